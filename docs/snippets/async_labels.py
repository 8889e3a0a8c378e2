"""Label many texts concurrently with the async hook, in one task or script (docs/hook.md, achat_completion)."""

import asyncio

from airflow_provider_aiml.hooks.aiml import AimlApiHook
from airflow_provider_aiml.models import ChatCompletionResult, Usage


async def label_all(texts: list[str]) -> list[str]:
    hook = AimlApiHook(log_calls=False, max_concurrency=8)
    limit = asyncio.Semaphore(8)  # at most 8 calls at a time, the same as max_concurrency

    async def one(text: str) -> ChatCompletionResult:
        async with limit:
            return await hook.achat_completion(
                [{"role": "user", "content": f"Label the sentiment: {text}"}],
                max_completion_tokens=1024,
            )

    try:
        results = await asyncio.gather(*(one(text) for text in texts))
    finally:
        await hook.aclose()
    total = sum((r.usage for r in results), Usage())
    print(f"{total.total_tokens} tokens, ${total.usd_spent}")
    return [r.content for r in results]


if __name__ == "__main__":
    labels = asyncio.run(label_all(["Great!", "Broken on arrival."]))
