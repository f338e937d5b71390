"""The three man pages render without a single warning in groff and in mandoc's linter,
and each documents what the contracts promise (flags, commands, config keys, MESSAGE_IDs)."""
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAN = os.path.join(ROOT, "docs", "man")
PAGES = ["ivs-autoscaler.8", "ivs-autoscalerctl.8", "ivs-autoscaler.yaml.5"]


def need(tool, package):
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian: {package})")
    return path


def rendered(page):
    """Plain text of a page, hyphenation and adjustment off, so words can be searched."""
    tool = need("groff", "groff-base")
    proc = subprocess.run([tool, "-man", "-Tutf8", "-P-cbou", "-rHY=0", "-dAD=l",
                           os.path.join(MAN, page)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return re.sub(r"[ \t]+", " ", proc.stdout.replace("\u2010", "-").replace("\u2212", "-"))


@pytest.mark.parametrize("page", PAGES)
def test_groff_clean(page):
    tool = need("groff", "groff-base")
    proc = subprocess.run([tool, "-ww", "-z", "-man", os.path.join(MAN, page)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("page", PAGES)
def test_mandoc_lint_clean(page):
    tool = need("mandoc", "mandoc")
    # -T lint reports style notes, warnings and errors; we accept none of them.
    proc = subprocess.run([tool, "-T", "lint", "-W", "style", os.path.join(MAN, page)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr


def test_daemon_page_documents_contract():
    text = rendered("ivs-autoscaler.8")
    for word in ["--config", "--check-config", "--online", "--once", "--dry-run", "-v",
                 "--version", "--help", "SIGHUP", "SIGTERM", "SIGINT", "JOURNAL_STREAM", "NOTIFY_SOCKET",
                 "WATCHDOG_USEC", "CREDENTIALS_DIRECTORY", "LISTEN_FDS", "AWS_ACCESS_KEY_ID",
                 "IVS_FLEET", "IVS_STAGE_ARN", "AWS_REQUEST_ID", "EXIT STATUS"]:
        assert word in text, word
    # Every MESSAGE_ID defined in common/log.h is listed, and no other.
    with open(os.path.join(ROOT, "common", "log.h"), encoding="utf-8") as f:
        ids = set(re.findall(r'#define MSGID_\w+\s+"([0-9a-f]{32})"', f.read()))
    assert ids, "no MSGID_ definitions found in common/log.h"
    assert set(re.findall(r"\b[0-9a-f]{32}\b", text)) == ids


def test_daemon_page_documents_every_metric_and_label_value():
    """Every family the daemon registers, and every value its labels can take."""
    text = rendered("ivs-autoscaler.8")
    section = text.split("\nMETRICS\n", 1)[1].split("\nLOGGING\n", 1)[0]
    with open(os.path.join(ROOT, "controller", "metrics.c"), encoding="utf-8") as f:
        src = f.read()
    families = [f for f in re.findall(r'P "(\w+)"', src) if f != "ivs_autoscaler_"]
    assert len(families) >= 18, families
    for name in families:
        assert "ivs_autoscaler_" + name in section, name
    for array in ("ivs_metrics_results", "ivs_metrics_operations", "ivs_metrics_outcomes"):
        body = re.search(r"const char \*const " + array + r"\[\] = \{(.*?)\};", src, re.S).group(1)
        values = re.findall(r'"(\w+)"', body)
        assert values, array
        for v in values:
            assert re.search(r"\b" + v + r"\b", section), (array, v)


def test_ctl_page_documents_every_command():
    text = rendered("ivs-autoscalerctl.8")
    for command in ["status", "fleets", "stages [fleet]", "replicas [fleet]", "plan [fleet]",
                    "metrics", "reconcile [fleet]", "pause [fleet]", "resume [fleet]",
                    "drain stage", "reload", "log-level level", "publisher [fleet]",
                    "replication status stage",
                    "replication start source destination participant",
                    "replication stop source destination participant",
                    "help [command]", "--socket", "--json", "IVS_AUTOSCALER_SOCKET"]:
        assert command in text, command
    exits = re.search(r"EXIT STATUS(.*?)FILES", text, re.S).group(1)
    assert [int(n) for n in re.findall(r"^ ?(\d) \S", exits, re.M)] == [0, 1, 2, 3]


def test_config_page_documents_every_key():
    text = rendered("ivs-autoscaler.yaml.5")
    keys = {
        "AWS": ["region", "endpoint", "profile", "credentials_file", "max_tps (number, default 4",
                "resync_share (number, default 0.5",
                "timeout (duration, default 10s)", "connect_timeout (duration, default 3s)"],
        "REDIS": ["url (string, default redis://127.0.0.1:6379/0)", "password ",
                  "password_file", 'key_prefix (string, default "ivs:prod:")',
                  "timeout (duration, default 2s)", 'wake_channel (string, default "autoscaler:wake")',
                  'viewers (default "stage:{arn}:viewers")', 'publisher (default "publisher:info")',
                  'desired_stages (default "desired_stages")',
                  'open_stages (default "autoscaler:fleet:{fleet}:stages")', "rediss://",
                  "tls", "ca_file (path, default empty)", "server_name (string, default empty)",
                  "cert_file (path, default empty)", "key_file (path, default empty)",
                  "sentinel", "master_name (string, default empty)",
                  "addresses (list of host:port, default empty)"],
        "CONTROL": ["socket (string, default /run/ivs-autoscaler/control.sock)",
                    "admin_group (string, default empty)", "max_clients (integer, default 64, 1..1024)",
                    "idle_timeout (duration, default 60s)"],
        "RECONCILE": ["resync_interval (duration, default 15s", "backoff_initial (duration, default 1s)",
                      "backoff_max (duration, default 5m)", "stop_timeout (duration, default 20s)"],
        "CONTROLLER": ["owner (string, default empty)", "instance (string, default the host name)"],
        "HA": ["enabled (boolean, default false)", 'lease_key (string, default "autoscaler:leader")',
               "lease_duration (duration, default 15s, 1s..5m)",
               "renew_deadline (duration, default 10s", "retry_period (duration, default 2s"],
        "METRICS": ["listen (string, default empty)"],
        "FLEETS": ["name (string, required)", "origin_stage_arn (string, required)",
                   "viewers_per_stage (integer, default 10000", "target_utilization (number, default 0.8",
                   "min_replicas (integer, default 0)", "max_replicas (integer, default 5",
                   "scale_down_delay (duration, default 5m)", "drain_timeout (duration, default 10m)",
                   "reconnect_window (duration, default 60s, 0..300s", "tags (mapping", "keys"],
    }
    order = list(keys) + ["EXAMPLES"]
    for i, section in enumerate(keys):
        body = text.split("\n" + section + "\n", 1)[1].split("\n" + order[i + 1] + "\n", 1)[0]
        for key in keys[section]:
            assert key in body, f"{section}: {key}"
