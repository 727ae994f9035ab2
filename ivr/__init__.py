"""IVR: flow definitions (YAML), their checks, prompts and TTS, and the ARI flow runner.

Public API for the dialer::

    from core.ari_events import EventDispatcher       # the app's one ARI event stream
    from ivr import FlowRunner, PromptCache, load_flow

    flow = load_flow(Path("config/ivr/vaccination_reminder.yaml"), fields=list_columns)
    runner = FlowRunner(ari, PromptCache.for_var_dir(settings.var_dir), recordings_dir=...)
    events = dispatcher.subscribe(attempt_id)        # dispatcher.run(ari.events()) owns the socket
    await runner.prepare(flow, contact)              # optional: render prompts while it rings
    result = await runner.run(attempt_id, flow, contact, events)
"""

from ivr.check import FlowError, Problem, check_file, check_text, load_flow
from ivr.flow import STANDARD_OUTCOMES, Flow, render
from ivr.runner import FlowResult, FlowRunner, GatherInput, TransferRequest, prepare_prompts, run_flow
from ivr.tts import EspeakNg, PromptCache, TtsEngine, TtsError, media_uri

__all__ = [
    "STANDARD_OUTCOMES",
    "EspeakNg",
    "Flow",
    "FlowError",
    "FlowResult",
    "FlowRunner",
    "GatherInput",
    "Problem",
    "PromptCache",
    "TransferRequest",
    "TtsEngine",
    "TtsError",
    "check_file",
    "check_text",
    "load_flow",
    "media_uri",
    "prepare_prompts",
    "render",
    "run_flow",
]
