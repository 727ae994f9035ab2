"""Practice scenarios: the simulated caller a trainee talks to, as YAML in ``config/practice/``.

    name: confused_elder
    title: 糊涂的老人            # what the trainee hears the scenario called (zh-CN)
    title_en: A confused elder  # the same in English
    description: …
    voice: cmn                  # the TTS voice (ivr.tts): Mandarin
    steps:
      - say: "喂？喂？是谁呀？"    # the caller's line, spoken by the server's text to speech
        listen: 6               # then this many seconds for the trainee to answer

The lab's scripted callees (tests/fakes/ari.py ``Callee``: answer, press, hang up) grown into
people: each step is what the caller says, then a pause for the trainee to speak. Unknown keys are
errors, as in every other configuration file.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.i18n import _, current_locale
from core.located_yaml import LocatedYamlError, load_located, validation_problems

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "practice"
MAX_LISTEN_S = 120.0


class Step(BaseModel):
    """What the simulated caller says, then how long the trainee has to answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    say: str = Field(min_length=1, max_length=500)
    listen: float = Field(default=5.0, ge=0, le=MAX_LISTEN_S)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    title: str = Field(min_length=1, max_length=100)
    title_en: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)
    voice: str = "cmn"
    steps: tuple[Step, ...] = Field(min_length=1, max_length=50)

    def shown_title(self) -> str:
        """The title in the reader's language (Chinese first)."""
        return self.title_en if current_locale().startswith("en") else self.title

    def seconds(self) -> float:
        """At least how long the call lasts: every pause (the speech comes on top)."""
        return sum(step.listen for step in self.steps)


class ScenarioError(ValueError):
    """No such scenario, or its file is wrong (says where)."""


def load_scenario(path: Path) -> Scenario:
    try:
        located = load_located(path.read_text(encoding="utf-8-sig"))
    except LocatedYamlError as exc:
        raise ScenarioError(f"{path}: {exc.message}") from exc
    try:
        scenario = Scenario.model_validate(located.data)
    except ValidationError as exc:
        problems = validation_problems(exc.errors(), located.lines())
        raise ScenarioError(f"{path}: " + "; ".join(problems)) from exc
    if scenario.name != path.stem:
        raise ScenarioError(_("{path}: name '{name}' is not the file's name", path=path, name=scenario.name))
    return scenario


@cache
def scenarios(folder: Path = CONFIG_DIR) -> dict[str, Scenario]:
    """Every scenario in ``folder``, by name."""
    return {s.name: s for s in (load_scenario(p) for p in sorted(folder.glob("*.yaml")))}


def scenario(name: str, folder: Path = CONFIG_DIR) -> Scenario:
    found = scenarios(folder).get(name)
    if found is None:
        raise ScenarioError(
            _(
                "no practice scenario named '{name}' (there are: {names})",
                name=name,
                names=", ".join(scenarios(folder)),
            )
        )
    return found
