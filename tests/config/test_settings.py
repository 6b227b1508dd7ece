"""Start-up configuration: defaults, every bad value refused with one line naming the variable."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
import structlog

from config.logging import configure_logging, redact_secrets
from config.settings import SANDBOX_ADMIN_KEY, RateLimit, SettingsError, load_settings


def test_defaults_match_the_contract() -> None:
    settings = load_settings({})
    assert settings.env == "sandbox" and settings.sandbox
    assert settings.http_port == 8080 and settings.temporal_port == 7233 and settings.embedded_temporal
    assert settings.admin_key == SANDBOX_ADMIN_KEY
    assert settings.quote_ttl == timedelta(minutes=15)
    assert settings.agent_quote_window == timedelta(hours=24)
    assert settings.decision_window == timedelta(hours=72)
    assert settings.change_context_ttl == timedelta(minutes=20)
    assert settings.checkout_ttl == timedelta(hours=24)
    assert settings.rescheduling_window == timedelta(hours=72)
    assert settings.credit_validity == timedelta(days=365)
    assert settings.sandbox_supplier_delay == timedelta(seconds=2)
    assert settings.sync_wait == timedelta(seconds=10)
    assert settings.webhook_retry_for == timedelta(hours=72)
    assert settings.database_url.startswith("sqlite+aiosqlite:///") and settings.database_url.endswith("aftersales.db")
    assert settings.log_format == "console"


def test_values_are_read() -> None:
    settings = load_settings({
        "AFTERSALES_ENV": "production", "AFTERSALES_ADMIN_KEY": "x" * 20, "AFTERSALES_HTTP_PORT": "9000",
        "TEMPORAL_ADDRESS": "temporal:7233", "AFTERSALES_DECISION_WINDOW": "7d", "AFTERSALES_SYNC_WAIT": "90s",
        "AFTERSALES_CREDIT_VALIDITY": "30d",
        "AFTERSALES_DATABASE_URL": "postgresql+asyncpg://u@db/aftersales",
    })
    assert not settings.sandbox and settings.log_format == "json"
    assert settings.http_port == 9000 and settings.temporal_target == "temporal:7233"
    assert settings.decision_window == timedelta(days=7) and settings.sync_wait == timedelta(seconds=90)
    assert settings.credit_validity == timedelta(days=30)
    assert "x" * 20 not in repr(settings)


def test_ports_of_the_operations_side() -> None:
    defaults = load_settings({})
    assert defaults.temporal_ui_port == 8233 and defaults.worker_metrics_port == 0
    assert defaults.worker_shutdown_grace == timedelta(seconds=30)
    # As the Temporal CLI does: the UI follows the frontend port, so two stacks never share one.
    assert load_settings({"AFTERSALES_TEMPORAL_PORT": "7300"}).temporal_ui_port == 8300
    assert load_settings({"AFTERSALES_TEMPORAL_PORT": "65000", "AFTERSALES_TEMPORAL_UI_PORT": "9000"}).temporal_ui_port == 9000
    assert load_settings({"AFTERSALES_WORKER_METRICS_PORT": "9464"}).worker_metrics_port == 9464
    assert load_settings({"AFTERSALES_WORKER_METRICS_PORT": "0"}).worker_metrics_port == 0


def test_hardening_settings_are_read() -> None:
    defaults = load_settings({})
    assert not defaults.webhook_allow_http
    assert defaults.http_header_timeout == timedelta(seconds=10) and defaults.http_body_timeout == timedelta(seconds=30)
    settings = load_settings({"AFTERSALES_WEBHOOK_ALLOW_HTTP": "true", "AFTERSALES_HTTP_HEADER_TIMEOUT": "5s",
                              "AFTERSALES_HTTP_BODY_TIMEOUT": "2m"})
    assert settings.webhook_allow_http
    assert settings.http_header_timeout == timedelta(seconds=5) and settings.http_body_timeout == timedelta(minutes=2)


def test_rate_limits_are_read() -> None:
    defaults = load_settings({})
    assert defaults.rate_limit == RateLimit(rate=50, burst=100)
    assert all(defaults.rate_limit_for(role) == defaults.rate_limit for role in ("partner", "agent", "admin", "supplier"))
    # Without a burst, twice the rate; a role's own budget replaces the common one for that role only.
    settings = load_settings({"AFTERSALES_RATE_LIMIT": "20/s", "AFTERSALES_RATE_LIMIT_AGENT": "200/s, burst=1000"})
    assert settings.rate_limit == RateLimit(rate=20, burst=40)
    assert settings.rate_limit_for("agent") == RateLimit(rate=200, burst=1000)
    assert settings.rate_limit_for("partner") == settings.rate_limit_for("supplier") == RateLimit(rate=20, burst=40)


def test_capacity_settings_are_read() -> None:
    defaults = load_settings({})
    assert (defaults.db_pool_size, defaults.db_pool_overflow) == (20, 10)
    # The SDK's own defaults, named so an operator sees and can change them.
    assert (defaults.worker_max_cached_workflows, defaults.worker_workflow_task_slots, defaults.worker_activity_slots,
            defaults.worker_pollers) == (1000, 100, 100, 5)
    settings = load_settings({"AFTERSALES_DB_POOL_SIZE": "40", "AFTERSALES_DB_POOL_OVERFLOW": "0",
                              "AFTERSALES_WORKER_MAX_CACHED_WORKFLOWS": "0", "AFTERSALES_WORKER_WORKFLOW_TASK_SLOTS": "20",
                              "AFTERSALES_WORKER_ACTIVITY_SLOTS": "300", "AFTERSALES_WORKER_POLLERS": "10"})
    assert (settings.db_pool_size, settings.db_pool_overflow) == (40, 0)
    assert (settings.worker_max_cached_workflows, settings.worker_workflow_task_slots, settings.worker_activity_slots,
            settings.worker_pollers) == (0, 20, 300, 10)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"AFTERSALES_DECISION_WINDOW": "soon"}, "AFTERSALES_DECISION_WINDOW"),
        ({"AFTERSALES_QUOTE_TTL": "15"}, "AFTERSALES_QUOTE_TTL"),
        ({"AFTERSALES_QUOTE_TTL": "0s"}, "AFTERSALES_QUOTE_TTL"),
        ({"AFTERSALES_HTTP_PORT": "70000"}, "AFTERSALES_HTTP_PORT"),
        ({"AFTERSALES_HTTP_PORT": "http"}, "AFTERSALES_HTTP_PORT"),
        ({"AFTERSALES_TEMPORAL_PORT": "0"}, "AFTERSALES_TEMPORAL_PORT"),
        ({"AFTERSALES_ENV": "prod"}, "AFTERSALES_ENV"),
        ({"AFTERSALES_ENV": "production"}, "AFTERSALES_ADMIN_KEY"),
        ({"AFTERSALES_ENV": "production", "AFTERSALES_ADMIN_KEY": SANDBOX_ADMIN_KEY}, "AFTERSALES_ADMIN_KEY"),
        ({"TEMPORAL_ADDRESS": "nohost"}, "TEMPORAL_ADDRESS"),
        ({"AFTERSALES_DATABASE_URL": "mysql://x"}, "AFTERSALES_DATABASE_URL"),
        ({"AFTERSALES_LOG_FORMAT": "xml"}, "AFTERSALES_LOG_FORMAT"),
        ({"AFTERSALES_SUPPLIER": "acme"}, "AFTERSALES_SUPPLIER"),
        ({"AFTERSALES_TEMPORAL_UI_PORT": "ui"}, "AFTERSALES_TEMPORAL_UI_PORT"),
        # The derived UI port (65000 + 1000) is no port: the operator must choose one.
        ({"AFTERSALES_TEMPORAL_PORT": "65000"}, "AFTERSALES_TEMPORAL_UI_PORT"),
        ({"AFTERSALES_WORKER_METRICS_PORT": "-1"}, "AFTERSALES_WORKER_METRICS_PORT"),
        ({"AFTERSALES_WORKER_SHUTDOWN_GRACE": "soon"}, "AFTERSALES_WORKER_SHUTDOWN_GRACE"),
        ({"AFTERSALES_CREDIT_VALIDITY": "1y"}, "AFTERSALES_CREDIT_VALIDITY"),
        ({"AFTERSALES_WEBHOOK_ALLOW_HTTP": "yes"}, "AFTERSALES_WEBHOOK_ALLOW_HTTP"),
        ({"AFTERSALES_HTTP_HEADER_TIMEOUT": "ten"}, "AFTERSALES_HTTP_HEADER_TIMEOUT"),
        ({"AFTERSALES_HTTP_BODY_TIMEOUT": "0s"}, "AFTERSALES_HTTP_BODY_TIMEOUT"),
        ({"AFTERSALES_RATE_LIMIT": "50"}, "AFTERSALES_RATE_LIMIT"),
        ({"AFTERSALES_RATE_LIMIT": "0/s"}, "AFTERSALES_RATE_LIMIT"),
        ({"AFTERSALES_RATE_LIMIT": "50/m"}, "AFTERSALES_RATE_LIMIT"),
        ({"AFTERSALES_RATE_LIMIT": "\uff15\uff10/s"}, "AFTERSALES_RATE_LIMIT"),  # full-width digits int() would take
        ({"AFTERSALES_RATE_LIMIT": "50/s,burst=0"}, "AFTERSALES_RATE_LIMIT"),
        ({"AFTERSALES_RATE_LIMIT": "50/s;burst=100"}, "AFTERSALES_RATE_LIMIT"),
        ({"AFTERSALES_RATE_LIMIT": "9" * 40 + "/s"}, "AFTERSALES_RATE_LIMIT"),
        ({"AFTERSALES_RATE_LIMIT_AGENT": "fast"}, "AFTERSALES_RATE_LIMIT_AGENT"),
        ({"AFTERSALES_DB_POOL_SIZE": "0"}, "AFTERSALES_DB_POOL_SIZE"),
        ({"AFTERSALES_DB_POOL_OVERFLOW": "-1"}, "AFTERSALES_DB_POOL_OVERFLOW"),
        ({"AFTERSALES_WORKER_MAX_CACHED_WORKFLOWS": "1e3"}, "AFTERSALES_WORKER_MAX_CACHED_WORKFLOWS"),
        ({"AFTERSALES_WORKER_WORKFLOW_TASK_SLOTS": "1"}, "AFTERSALES_WORKER_WORKFLOW_TASK_SLOTS"),
        ({"AFTERSALES_WORKER_ACTIVITY_SLOTS": "\uff15"}, "AFTERSALES_WORKER_ACTIVITY_SLOTS"),
        ({"AFTERSALES_WORKER_POLLERS": "9" * 40}, "AFTERSALES_WORKER_POLLERS"),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(environ)
    assert error.value.variable == variable
    assert str(error.value).startswith(f"{variable}: ") and "\n" not in str(error.value)


@pytest.mark.parametrize("module", ["api", "worker"])
def test_processes_exit_2_with_one_line(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module], env={"AFTERSALES_DECISION_WINDOW": "soon", "PATH": ""},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "AFTERSALES_DECISION_WINDOW" in lines[0] and "90s" in lines[0]


def test_secrets_never_reach_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(load_settings({"AFTERSALES_ENV": "production", "AFTERSALES_ADMIN_KEY": "y" * 20}), "test")
    structlog.get_logger().info("bound", api_key="ask_secret", webhook_secret="whsec_x", authorization="Bearer z")
    out = capsys.readouterr().out
    assert '"api_key": "[redacted]"' in out and "ask_secret" not in out and "whsec_x" not in out
    assert redact_secrets(None, "info", {"password": "p"}) == {"password": "[redacted]"}
    structlog.reset_defaults()
