"""Which task an observed app state closes, as commands handled with the observation.

By operation id first: a state naming the operation app-service gave a task is about that
task (and a canceled install's state, which names the install or the cancel, is about both
the install and the cancel of that app). Then, for a state without one (status correction,
an older app-service), by user, app and the operation's kind, and only for a task that is
accepted and open (one this instance still knows as sent is proposed too: the aggregate, read
from the store, knows whether it has been accepted meanwhile). The task aggregate then
refuses a state reported before the task was sent (it is about an earlier operation), and a
repeat or a late state changes a closed task no more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from market_ledger.domain.decider import Command
from market_ledger.domain.installation import ObserveInstallationState, RemoveInstallation
from market_ledger.domain.task import ObserveOutcome
from market_ledger.domain.task_events import CANCEL
from market_ledger.domain.task_outcomes import Ending, endings, endings_seen_by_correction
from market_ledger.service.open_tasks import OpenTask, OpenTasks


def _closer(
    index: OpenTasks, user: str, name: str, op_id: str, found: Sequence[Ending]
) -> Iterable[tuple[OpenTask, Ending, str]]:
    """The tasks the state closes, each with its ending and the operation id the state is
    taken to name for it ("" when it closes the task without naming its operation)."""
    by_kind = {ending.kind: ending for ending in found}
    task = index.accepted_with_op_id(op_id)
    if task is not None:
        if task.kind not in by_kind:
            return
        yield task, by_kind[task.kind], op_id
        # A canceled install ends two tasks: the install and the cancel that stopped it.
        # app-service names one of the two operations (the install's or the cancel's): the
        # other is the app's accepted task of the other side, whatever its operation id.
        for ending in found:
            if ending.kind != task.kind and CANCEL in (ending.kind, task.kind):
                other = index.accepted_for(user, name, ending.kind)
                if other is not None:
                    yield other, ending, ""
        return
    for ending in found:
        # A task this index still knows as sent may be accepted in the store already (the
        # answer's commit and this state raced): its aggregate, read fresh, decides.
        task = index.sent_for(user, name, ending.kind)
        if task is not None and (not op_id or not task.op_id):
            yield task, ending, op_id


def closing_commands(index: OpenTasks, commands: Sequence[Command]) -> list[Command]:
    """The outcomes the observations among ``commands`` report for open tasks."""
    closing: list[Command] = []
    seen: set[str] = set()
    for command in commands:
        if isinstance(command, ObserveInstallationState):
            if command.origin == "app-state":
                found = endings(command.op_type, command.state)
            else:
                found = endings_seen_by_correction(True, command.state)
            user, name, op_id = command.user, command.name, command.op_id
        elif isinstance(command, RemoveInstallation):
            found = endings_seen_by_correction(False, "")
            user, name, op_id = command.user, command.name, ""
        else:
            continue
        if not found:
            continue
        for task, ending, named in _closer(index, user, name, op_id, found):
            if task.task_id in seen:
                continue
            seen.add(task.task_id)
            state = command.state if isinstance(command, ObserveInstallationState) else "absent"
            closing.append(
                ObserveOutcome(
                    task.task_id,
                    outcome=ending.outcome,
                    app_state=state,
                    op_id=named,
                    observed_at=command.observed_at,
                )
            )
    return closing
