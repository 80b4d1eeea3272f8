"""Limit settings are validated when loaded, and the factory opens the store they name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.costs.limits.conftest import REDIS_URL
from tether.costs.limits import STORES, LimitSettings, LimitStore, open_limit_store
from tether.costs.limits.database import DatabaseLimitStore
from tether.costs.limits.memory import MemoryLimitStore
from tether.costs.limits.redis import RedisLimitStore
from tether.errors import ConfigError
from tether.settings import Settings
from tether.store.engine import open_database


def test_limits_and_prompt_budgets_load_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "tether.toml"
    config.write_text(
        '[limits]\nstore = "redis"\nkey_prefix = "gw"\n\n'
        '[[budgets]]\nprompt = "summarize"\nusd = 25.0\nperiod = "day"\n\n'
        '[[budgets]]\nprompt = "classify"\nusd = 100\n'
    )
    settings = Settings.load(config, environ={})
    assert (settings.limits.store, settings.limits.key_prefix) == ("redis", "gw")
    assert [(b.prompt, b.usd, b.period) for b in settings.budgets] == [
        ("summarize", 25.0, "day"),
        ("classify", 100.0, "month"),
    ]
    assert Settings.load(environ={}).limits.store == "memory"


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ('[limits]\nstore = "memcached"\n', "limits.store"),
        ('[limits]\nredis = "redis://x"\n', "limits.redis"),
        ('[[budgets]]\nprompt = "p"\nusd = 0\n', "budgets.0.usd"),
        ('[[budgets]]\nprompt = "p"\nusd = -1\n', "budgets.0.usd"),
        ('[[budgets]]\nprompt = "p"\nusd = 1\nperiod = "week"\n', "budgets.0.period"),
        ("[[budgets]]\nusd = 1\n", "budgets.0.prompt"),
        ('[[budgets]]\nprompt = "p"\nusd = 1\n[[budgets]]\nprompt = "p"\nusd = 2\n', "two budgets"),
    ],
)
def test_bad_limit_settings_name_the_file_and_field(tmp_path: Path, toml: str, field: str) -> None:
    config = tmp_path / "tether.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as refused:
        Settings.load(config, environ={})
    assert str(config) in str(refused.value)
    assert field in str(refused.value)


async def test_the_factory_opens_the_store_the_settings_name(
    tmp_path: Path, redis_prefix: str
) -> None:
    assert set(STORES) == {"memory", "database", "redis"}
    url = f"sqlite:///{tmp_path / 'limits.db'}"
    expected: dict[str, type[LimitStore]] = {
        "memory": MemoryLimitStore,
        "database": DatabaseLimitStore,
        "redis": RedisLimitStore,
    }
    engine = open_database(url)
    for name, kind in expected.items():
        settings = LimitSettings(store=name, redis_url=REDIS_URL, key_prefix=redis_prefix)
        store = open_limit_store(settings, lambda: engine)
        try:
            assert isinstance(store, kind)
            assert store.name == name
        finally:
            await store.close()
    engine.dispose()
