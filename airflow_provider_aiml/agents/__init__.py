"""Tools for the agent operator: Python functions the model can call, and a read-only SQL toolset.

:class:`~airflow_provider_aiml.agents.sql.SqlToolset` is imported from ``airflow_provider_aiml.agents.sql``
(it needs the ``sql`` extra: sqlglot and common-sql).
"""

from airflow_provider_aiml.agents.tools import (
    MAX_TOOLS,
    Tool,
    ToolOutcome,
    ToolRefusal,
    Toolset,
    as_tools,
    make_tool,
    mask,
    tool,
)

__all__ = ["MAX_TOOLS", "Tool", "ToolOutcome", "ToolRefusal", "Toolset", "as_tools", "make_tool", "mask", "tool"]
