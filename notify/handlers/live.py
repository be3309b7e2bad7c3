"""The handlers of the timers the live path arms, by timer kind: what `cdsctl worker` and `cdsctl serve` run."""

from __future__ import annotations

from notify.handlers.delay import DelayDueHandler
from notify.handlers.escalation import EscalationStepHandler
from notify.live_timers import LiveTimerKind
from notify.port import Clock, TimerHandler, system_clock
from notify.settings import NotifySettings


def live_handlers(settings: NotifySettings, *, clock: Clock = system_clock) -> dict[str, TimerHandler]:
    return {
        LiveTimerKind.ESCALATION_STEP: EscalationStepHandler(settings.routes, clock=clock),
        LiveTimerKind.DELAY_DUE: DelayDueHandler(settings.routes, clock=clock),
    }
