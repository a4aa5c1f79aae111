"""The Docker deployment's secrets: ``btc-pipeline init-env`` (``make env``) and the check that
refuses placeholders (``btc-pipeline check-secrets``, compose's first service)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from btc_pipeline.cli.main import main
from btc_pipeline.config import read_env_file
from btc_pipeline.deploy_secrets import SECRET_KEYS, SECRETS, env_with_secrets, secret_problems

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"


def good_env() -> dict[str, str]:
    return read_env_file_text(env_with_secrets(ENV_EXAMPLE.read_text()))


def read_env_file_text(text: str) -> dict[str, str]:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ".env"
        path.write_text(text)
        return read_env_file(path)


def test_generated_secrets_pass_and_are_what_each_service_needs() -> None:
    env = good_env()
    assert secret_problems(env) == []
    Fernet(env["AIRFLOW_FERNET_KEY"].encode()).decrypt(Fernet(env["AIRFLOW_FERNET_KEY"].encode()).encrypt(b"x"))
    assert len(env["AIRFLOW_JWT_SECRET"].encode()) >= 64
    for key in ("POSTGRES_PASSWORD", "MONGO_ROOT_PASSWORD", "MONGO_READER_PASSWORD", "AIRFLOW_ADMIN_PASSWORD"):
        assert len(env[key]) >= 32 and env[key].replace("-", "").replace("_", "").isalnum(), key
    assert len({env[key] for key in SECRET_KEYS}) == len(SECRET_KEYS), "two secrets are the same"
    assert good_env()["MONGO_ROOT_PASSWORD"] != env["MONGO_ROOT_PASSWORD"], "not random"


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("AIRFLOW_ADMIN_PASSWORD", "", "is empty"),
        ("AIRFLOW_ADMIN_PASSWORD", "admin", "well-known"),
        ("AIRFLOW_ADMIN_PASSWORD", "Airflow", "well-known"),
        ("POSTGRES_PASSWORD", "password", "well-known"),
        ("POSTGRES_PASSWORD", "change-me-postgres-password", "placeholder"),
        ("MONGO_ROOT_PASSWORD", "CHANGE-ME-please-0123456789", "placeholder"),
        ("MONGO_ROOT_PASSWORD", "short1", "too short"),
        ("MONGO_ROOT_PASSWORD", "p@ss/word?with#uri&chars", "break the URIs"),
        ("MONGO_READER_USER", "btc_reader_user_long", None),  # set below as the password too
        (
            "AIRFLOW_JWT_SECRET",
            "change-me-jwt-secret-placeholder-generate-one-with-secrets-token-urlsafe-64",
            "placeholder",
        ),
        ("AIRFLOW_JWT_SECRET", "x" * 63, "too short"),
        ("AIRFLOW_API_SECRET_KEY", "   ", "is empty"),
        ("AIRFLOW_FERNET_KEY", "", "is empty"),
        ("AIRFLOW_FERNET_KEY", "not-a-fernet-key-but-long-enough-to-pass-the-length-check", "not a Fernet key"),
    ],
)
def test_each_weak_secret_is_refused_by_name_with_make_env(key: str, value: str, reason: str | None) -> None:
    env = good_env()
    env[key] = value
    if reason is None:  # a password equal to its user name
        env["MONGO_READER_PASSWORD"] = value
        key, reason = "MONGO_READER_PASSWORD", "guessable"
    problems = secret_problems(env)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{key} ") and reason in problems[0] and "make env" in problems[0]
    if len(value.strip()) >= 10:  # (short ones are words of the message itself: "password")
        assert value not in problems[0], "a refusal quotes the value"


def test_the_reader_needs_a_password_of_its_own() -> None:
    env = good_env()
    env["MONGO_READER_PASSWORD"] = env["MONGO_ROOT_PASSWORD"]
    assert [p.split()[0] for p in secret_problems(env)] == ["MONGO_READER_PASSWORD"]


def test_the_example_is_refused_naming_every_secret() -> None:
    refused = secret_problems(read_env_file(ENV_EXAMPLE))
    assert [line.split()[0] for line in refused] == [secret.key for secret in SECRETS]


# --- the commands ----------------------------------------------------------------------------


def test_init_env_writes_a_private_env_and_never_overwrites_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / ".env"
    args = ["init-env", "--path", str(env), "--example", str(ENV_EXAMPLE)]
    assert main(args) == 0
    written = env.read_text()
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    values = read_env_file(env)
    assert secret_problems(values) == []
    out = capsys.readouterr().out
    assert all(values[key] not in out for key in SECRET_KEYS), "init-env printed a secret"
    # the secrets' lines are new, every other line is the example's
    example = ENV_EXAMPLE.read_text().splitlines()
    changed = [a.partition("=")[0] for a, b in zip(example, written.splitlines(), strict=True) if a != b]
    assert changed == list(SECRET_KEYS)

    assert main(args) == 1
    err = capsys.readouterr().err
    assert "exists already" in err and "--force" in err
    assert env.read_text() == written, "overwritten without --force"

    assert main([*args, "--force"]) == 0
    assert read_env_file(env)["AIRFLOW_JWT_SECRET"] != values["AIRFLOW_JWT_SECRET"]
    assert secret_problems(read_env_file(env)) == []


def test_check_secrets_refuses_the_example_and_accepts_a_generated_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-secrets", "--env-file", str(ENV_EXAMPLE)]) == 1
    err = capsys.readouterr().err
    for key in SECRET_KEYS:
        assert f"  - {key} " in err, key
    assert "make env" in err

    env = tmp_path / ".env"
    assert main(["init-env", "--path", str(env), "--example", str(ENV_EXAMPLE)]) == 0
    assert main(["check-secrets", "--env-file", str(env)]) == 0
    assert main(["check-secrets", "--env-file", str(tmp_path / "missing")]) == 2


def test_check_secrets_reads_the_environment_as_compose_passes_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in good_env().items():
        monkeypatch.setenv(key, value)
    assert main(["check-secrets"]) == 0
    monkeypatch.setenv("AIRFLOW_ADMIN_PASSWORD", "admin")
    assert main(["check-secrets"]) == 1
    assert "AIRFLOW_ADMIN_PASSWORD is a well-known" in capsys.readouterr().err
