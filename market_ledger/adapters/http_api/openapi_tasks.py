"""The task read routes in the OpenAPI document: their operations and their shapes."""

from __future__ import annotations

from market_ledger.adapters.http_api.openapi_schema import (
    BFL_USER,
    USER_PARAMS,
    Operation,
    Schema,
    array,
    errors,
    integer,
    name,
    nullable,
    obj,
    ok,
    param,
    ref,
    string,
)
from market_ledger.adapters.http_api.routes_tasks_read import PREFIX
from market_ledger.domain.task_events import KINDS, OUTCOMES, TaskStatus
from market_ledger.projections.task_reads import TASK_FIELDS
from market_ledger.projections.task_rows import WIRE_STATUSES

#: what a task's ``outcome`` may be once known
TASK_OUTCOMES = [*OUTCOMES, TaskStatus.TIMED_OUT, TaskStatus.INTERRUPTED]
LIST_ERRORS = ("400", "401", "403", "500", "503")
TASK_MEANING = {"404": "No such task, or another user's task without the admin role."}


def task_read_operations() -> tuple[Operation, ...]:
    return (
        Operation(
            "get",
            f"{PREFIX}/ledger/tasks",
            "tasks",
            "The user's tasks, newest first.",
            {**ok("The tasks.", array(ref("Task"))), **errors(*LIST_ERRORS)},
            USER_PARAMS,
        ),
        Operation(
            "get",
            f"{PREFIX}/ledger/tasks/{{task_id}}",
            "task",
            "One task (another user's only for an admin).",
            {
                **ok("The task.", ref("Task")),
                **errors("400", "401", "404", "500", "503", meaning=TASK_MEANING),
            },
            (BFL_USER, param("task_id", "path", string(), "The task's id.", True)),
        ),
        Operation(
            "get",
            f"{PREFIX}/runtime/state",
            "runtimeState",
            "Installed apps' states, tasks by id and counts per status (another user's, or "
            "everyone's without user_id, for an admin).",
            {**ok("The runtime state.", ref("RuntimeState")), **errors(*LIST_ERRORS)},
            (
                BFL_USER,
                param("user_id", "query", name(), "Whose (default: the requester's; admin)."),
                param("source_id", "query", name(), "Only this source."),
                param("app_name", "query", name(), "Only this app."),
                param("task_status", "query", string(enum=list(WIRE_STATUSES)), "Only tasks so."),
                param("task_type", "query", string(enum=list(KINDS)), "Only tasks of this kind."),
            ),
        ),
    )


def task_schemas() -> dict[str, Schema]:
    task = obj(
        list(TASK_FIELDS),
        task_id=string(),
        kind=string(enum=list(KINDS)),
        user=string(),
        app_name=string(),
        source=string(),
        version=string(),
        status=string(enum=list(WIRE_STATUSES)),
        outcome=nullable(string(enum=[*TASK_OUTCOMES, None])),
        op_id=nullable(string()),
        created_at=string(format="date-time"),
        started_at=nullable(string(format="date-time")),
        completed_at=nullable(string(format="date-time")),
        error=nullable(string()),
    )
    env = obj(["envName", "value"], envName=string(), value=string())
    task_state = obj(
        ["task_id", "type", "status", "app_name", "user_id", "created_at"],
        task_id=string(),
        type=string(enum=list(KINDS)),
        status=string(enum=list(WIRE_STATUSES)),
        app_name=string(),
        user_id=string(),
        op_id=string(),
        progress=integer(minimum=1, maximum=100),
        created_at=string(format="date-time"),
        started_at=string(format="date-time"),
        completed_at=string(format="date-time"),
        error_msg=string(),
        metadata=obj(
            ["source", "version", "envs"], source=string(), version=string(), envs=array(env)
        ),
    )
    app_state = obj(
        ["state", "op_type", "version", "source"],
        state=string(),
        op_type=string(),
        version=string(),
        source=string(),
    )
    counts = ("total", *WIRE_STATUSES)
    runtime = obj(
        ["timestamp", "app_states", "tasks", "components", "summary"],
        timestamp=string(format="date-time"),
        app_states={"type": "object", "additionalProperties": app_state},
        tasks={"type": "object", "additionalProperties": ref("TaskState")},
        components={"type": "object"},
        summary=obj(
            [f"{c}_tasks" for c in counts], **{f"{c}_tasks": integer(minimum=0) for c in counts}
        ),
    )
    return {"Task": task, "TaskState": task_state, "RuntimeState": runtime}
