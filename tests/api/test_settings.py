"""Settings come from the environment and refuse unsafe configurations at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from api import Role, Settings, create_app
from api.serve import main as serve_main
from api.settings import parse_api_keys

GOOD = "0123456789abcdef"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DISPATCH_API_KEYS", "DISPATCH_API_KEYS_FILE", "DISPATCH_TICK_INTERVAL_S"):
        monkeypatch.delenv(name, raising=False)


def test_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCH_API_KEYS", f"{GOOD}=admin, {GOOD}-m17=merchant:m-17 ,{GOOD}-app=app:m-1|m-2")
    monkeypatch.setenv("DISPATCH_TICK_INTERVAL_S", "2.5")
    settings = Settings()
    assert settings.tick_interval_s == 2.5
    admin, merchant, app = (settings.principal_for(k) for k in (GOOD, f"{GOOD}-m17", f"{GOOD}-app"))
    assert admin is not None and admin.role is Role.ADMIN
    assert merchant is not None and merchant.tenant == "m-17" and merchant.serves_merchant("m-17")
    assert not merchant.serves_merchant("m-18")
    assert app is not None and app.tenants == {"m-1", "m-2"} and not app.serves_merchant("m-3")
    assert settings.principal_for("0123456789abcdeX") is None
    assert GOOD not in repr(settings)  # the keys are secret


def test_keys_come_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"# the ops team\n\n{GOOD}=analyst\n{GOOD}-c4=courier:c-4\n")
    monkeypatch.setenv("DISPATCH_API_KEYS_FILE", str(keys))
    settings = Settings()
    courier = settings.principal_for(f"{GOOD}-c4")
    assert courier is not None and courier.role is Role.COURIER and courier.tenant == "c-4"


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({}, "set exactly one of"),  # no keys at all: refuse to start open
        ({"DISPATCH_API_KEYS": f"{GOOD}=admin", "DISPATCH_API_KEYS_FILE": "/x"}, "set exactly one of"),
        (
            {"DISPATCH_API_KEYS": "k1=admin"},
            "at least 16 characters",
        ),  # the example keys are too short
        ({"DISPATCH_API_KEYS": f"{GOOD}=root"}, "unknown role 'root'"),
        ({"DISPATCH_API_KEYS": f"{GOOD}=merchant"}, "names exactly one merchant id"),
        ({"DISPATCH_API_KEYS": f"{GOOD}=courier:c-1|c-2"}, "names exactly one courier id"),
        ({"DISPATCH_API_KEYS": f"{GOOD}=admin:m-1"}, "has no tenant"),
        ({"DISPATCH_API_KEYS": f"{GOOD}=admin,{GOOD}=analyst"}, "listed twice"),
        ({"DISPATCH_API_KEYS": f"{GOOD}=merchant:m/1"}, "tenant ids must match"),
        ({"DISPATCH_API_KEYS": f"{GOOD}"}, "expected key=role"),
        ({"DISPATCH_API_KEYS": " , "}, "lists no API keys"),
        ({"DISPATCH_API_KEYS_FILE": "/nonexistent/keys"}, "cannot be read"),
        (
            {"DISPATCH_API_KEYS": f"{GOOD}=admin", "DISPATCH_TICK_INTERVAL_S": "-1"},
            "greater than or equal to 0",
        ),
    ],
)
def test_unsafe_configurations_are_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], reason: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=reason.replace("|", r"\|")):
        Settings()
    with pytest.raises(ValidationError):
        create_app()  # the factory reads the environment when called, and refuses the same


@pytest.mark.parametrize(("value", "on"), [(None, True), ("false", False), ("true", True)])
def test_supply_admission_is_on_unless_the_environment_turns_it_off(
    monkeypatch: pytest.MonkeyPatch, value: str | None, on: bool
) -> None:
    monkeypatch.setenv("DISPATCH_API_KEYS", f"{GOOD}=admin")
    if value is None:
        monkeypatch.delenv("DISPATCH_SUPPLY_ADMISSION", raising=False)
    else:
        monkeypatch.setenv("DISPATCH_SUPPLY_ADMISSION", value)
    assert create_app().state.runtime.dispatcher.config.supply_admission is on


def test_serve_refuses_to_start_without_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_main(["--port", "0"]) == 2
    assert "configuration refused: set exactly one of DISPATCH_API_KEYS" in capsys.readouterr().err


def test_keys_with_spaces_are_refused() -> None:
    with pytest.raises(ValueError, match="spaces or control characters"):
        parse_api_keys(["0123456789 abcdef=admin"], "test")
