from airflow_provider_aiml.testing import Fault


def test_label_task_succeeds_after_a_rate_limit(dagbag, aiml_connection):
    aiml_connection.set_reply(content='{"label": "negative"}', reasoning="The item arrived broken.")
    aiml_connection.add_fault(Fault.status(429, retry_after=0))

    dag_run = dagbag.dags["review_labels"].test()

    assert dag_run.state == "success"
    assert len(aiml_connection.chat_requests) == 2  # the 429, then the retry
    body = aiml_connection.chat_requests[-1].json
    assert body["model"] == "alibaba/qwen3-vl-32b-thinking"
    assert body["response_format"] == {"type": "json_object"}
    ti = dag_run.get_task_instance("label")
    assert ti.xcom_pull(task_ids="label", key="parsed") == {"label": "negative"}
    assert ti.xcom_pull(task_ids="label", key="reasoning") == "The item arrived broken."


def test_out_of_credits_fails_the_task(dagbag, aiml_connection):
    aiml_connection.add_fault(Fault.status(403))

    dag_run = dagbag.dags["review_labels"].test()

    assert dag_run.state == "failed"
    assert len(aiml_connection.chat_requests) == 1  # a 403 is not retried
