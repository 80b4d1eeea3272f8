from __future__ import annotations

from pathlib import Path

import pytest

from tether import ConfigError, ModelNotFound, Settings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tether.toml"
    path.write_text(text)
    return path


def test_defaults_have_the_local_model(tmp_path: Path) -> None:
    settings = Settings.load(_write(tmp_path, ""), environ={})
    name, model = settings.model(None)
    assert name == "local"
    assert model.provider == "llamacpp"


def test_file_models_add_to_the_local_one(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
default_model = "gpt"
[models.gpt]
provider = "openai"
upstream_model = "gpt-4o-mini"
price = { input_per_million = 0.15, output_per_million = 0.6 }
""",
    )
    settings = Settings.load(path, environ={"OPENAI_API_KEY": "sk-secret-value"})
    assert set(settings.models) == {"local", "local-small", "local-embed", "gpt"}
    gpt = settings.models["gpt"]
    assert gpt.api_key_env == "OPENAI_API_KEY"  # the conventional variable for hosted OpenAI
    assert gpt.api_key is not None
    assert gpt.api_key.get_secret_value() == "sk-secret-value"
    assert "sk-secret-value" not in repr(settings)
    assert "sk-secret-value" not in settings.model_dump_json()


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, 'default_model = "local"\nmax_repairs = 1\n')
    settings = Settings.load(path, environ={"TETHER_MAX_REPAIRS": "4"})
    assert settings.max_repairs == 4


def test_syntax_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, 'default_model = "local"\n[models.x\n')
    with pytest.raises(ConfigError) as err:
        Settings.load(path, environ={})
    assert str(path) in str(err.value)
    assert "line 2" in str(err.value)


def test_unknown_fields_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path, '[models.x]\nprovider = "openai"\ntemprature = 1\n')
    with pytest.raises(ConfigError) as err:
        Settings.load(path, environ={})
    assert err.value.field == "models.x.temprature"
    assert err.value.file == str(path)
    assert "remove" in err.value.fix


def test_unknown_providers_list_the_choices(tmp_path: Path) -> None:
    path = _write(tmp_path, '[models.x]\nprovider = "gemini"\n')
    with pytest.raises(ConfigError) as err:
        Settings.load(path, environ={})
    assert "llamacpp" in str(err.value)
    assert err.value.field == "models.x.provider"


def test_bad_values_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "max_repairs = -1\n")
    with pytest.raises(ConfigError) as err:
        Settings.load(path, environ={})
    assert err.value.field == "max_repairs"


def test_config_variable_pointing_nowhere(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.load(environ={"TETHER_CONFIG": str(tmp_path / "nope.toml")})
    assert "nope.toml" in str(err.value)


def test_unknown_model_lists_the_configured_ones(tmp_path: Path) -> None:
    settings = Settings.load(_write(tmp_path, ""), environ={})
    with pytest.raises(ModelNotFound) as err:
        settings.model("gpt-9")
    assert err.value.known == ("local", "local-small", "local-embed")


def test_every_problem_in_a_config_file_is_listed(tmp_path: Path) -> None:
    config = tmp_path / "tether.toml"
    config.write_text(
        'max_repairs = -1\nsurprise = 1\n[server]\nport = 99999\n[models.x]\nprovider = "nope"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        Settings.load(config, environ={})
    message = str(err.value)
    assert str(config) in message
    assert "4 problems" in message
    for field in ("max_repairs", "surprise", "server.port", "models.x.provider"):
        assert f"\n  {field}: " in message, field
    assert "remove the field" in message  # the unknown one says what to do
