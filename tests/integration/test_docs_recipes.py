"""Every recipe in the documentation works as written: each configuration block in docs/*.md is
accepted by `ivs-autoscaler --check-config`, each JSON block parses, the IAM policy grants what
the daemon calls (mutations only under the ownership tag), and the Prometheus examples pass
`promtool check config` / `check rules`, the alerts fire as their unit tests expect
(`promtool test rules`), and they name only metrics the daemon exports."""
import glob
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from harness import BUILD, ROOT

DAEMON = os.path.join(BUILD, "ivs-autoscaler")
DOCS = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))) + [os.path.join(ROOT, "README.md")]
EXAMPLES = os.path.join(ROOT, "docs", "examples")
POLICY = os.path.join(EXAMPLES, "iam-policy.json")
CONFIG_SECTIONS = {"aws", "redis", "control", "reconcile", "metrics", "fleets"}
MINIMAL_FLEETS = ("fleets:\n  - name: main\n"
                  "    origin_stage_arn: arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGh1234\n")


def blocks(lang):
    """(file:line, text) of every fenced block of that language in the docs."""
    out = []
    for path in DOCS:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        for m in re.finditer(r"^```" + lang + r"\n(.*?)^```", text, re.S | re.M):
            line = text.count("\n", 0, m.start()) + 1
            out.append((f"{os.path.relpath(path, ROOT)}:{line}", m.group(1)))
    return out


def daemon_metric_names():
    with open(os.path.join(ROOT, "controller", "metrics.c"), encoding="utf-8") as fh:
        names = {"ivs_autoscaler_" + n for n in re.findall(r'P "(\w+)"', fh.read()) if n}
    histograms = {n + s for n in names if n.endswith("_seconds") for s in ("_bucket", "_sum", "_count")}
    return names | histograms


def daemon_operations():
    with open(os.path.join(ROOT, "controller", "metrics.c"), encoding="utf-8") as fh:
        body = re.search(r"ivs_metrics_operations\[\] = \{(.*?)\};", fh.read(), re.S).group(1)
    return set(re.findall(r'"(\w+)"', body))


def config_blocks():
    found = []
    for where, text in blocks("yaml"):
        doc = yaml.safe_load(text)
        if isinstance(doc, dict) and set(doc) <= CONFIG_SECTIONS:
            found.append((where, text))
    return found


def test_the_docs_have_config_recipes():
    wheres = [w for w, _ in config_blocks()]
    assert any("operator-guide" in w for w in wheres), wheres
    assert len(wheres) >= 3, wheres


@pytest.mark.skipif(not os.access(DAEMON, os.X_OK), reason=f"daemon not built in {BUILD}")
@pytest.mark.parametrize("where,text", config_blocks(), ids=[w for w, _ in config_blocks()])
def test_config_recipe_passes_check_config(tmp_path, where, text):
    doc = yaml.safe_load(text)
    if "fleets" not in doc:
        text = text + MINIMAL_FLEETS          # a fragment: the section shown, with a fleet
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text)
    # the *_file names of the recipe, as LoadCredential= would provide them
    creds = tmp_path / "credentials"
    creds.mkdir()
    def secret_files(node):
        """(key, relative name) of every credentials_file/password_file, at any depth."""
        for key, value in (node.items() if isinstance(node, dict) else ()):
            if key in ("credentials_file", "password_file") and isinstance(value, str) \
                    and value and not value.startswith("/"):
                yield key, value
            yield from secret_files(value)
    for key, name in secret_files(doc):
        f = creds / name
        f.write_text("[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = x\n"
                     if key == "credentials_file" else "secret\n")
        os.chmod(f, 0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["CREDENTIALS_DIRECTORY"] = str(creds)
    p = subprocess.run([DAEMON, "--check-config", "-c", str(cfg)], capture_output=True,
                       env=env, timeout=30)
    assert p.returncode == 0, f"{where}: {p.stderr.decode()}"
    effective = yaml.safe_load(p.stdout.decode())
    for section, values in doc.items():
        if isinstance(values, dict):
            for key, value in values.items():
                if isinstance(value, (str, int, float)) and not key.endswith("_file") \
                        and key not in ("url", "timeout", "idle_timeout"):
                    assert effective[section][key] == value, (where, section, key)


@pytest.mark.parametrize("where,text", blocks("json"), ids=[w for w, _ in blocks("json")])
def test_json_recipe_is_valid(where, text):
    json.loads(text)


def test_example_files_are_valid_json():
    files = glob.glob(os.path.join(EXAMPLES, "*.json"))
    assert POLICY in files
    for path in files:
        with open(path, encoding="utf-8") as fh:
            json.load(fh)


def test_iam_policy_is_least_privilege_for_what_the_daemon_calls():
    with open(POLICY, encoding="utf-8") as fh:
        policy = json.load(fh)
    assert policy["Version"] == "2012-10-17"
    granted = {}
    for st in policy["Statement"]:
        assert st["Effect"] == "Allow"
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        for a in actions:
            assert a.startswith("ivs:") and "*" not in a, a
            granted[a[4:]] = st
    # exactly what the daemon calls, plus TagResource (CreateStage sends the tags)
    assert set(granted) == daemon_operations() | {"TagResource"}
    for op in ("CreateStage", "TagResource"):
        cond = granted[op].get("Condition", {}).get("StringEquals", {})
        assert cond.get("aws:RequestTag/ivs-autoscaler:managed") == "true", op
    cond = granted["DeleteStage"].get("Condition", {}).get("StringEquals", {})
    assert cond.get("aws:ResourceTag/ivs-autoscaler:managed") == "true"
    for op, st in granted.items():
        if op.startswith("List"):
            assert st["Resource"] == "*", op
        else:
            assert re.fullmatch(r"arn:aws:ivs:[a-z0-9-]+:\d{12}:stage/\*", st["Resource"]), op
    # the guide shows the same document
    # (other policies in the guide, such as a role's trust policy, grant no ivs: action)
    shown = [json.loads(t) for w, t in blocks("json") if '"ivs:' in t]
    assert shown == [policy]


def promtool():
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (Debian package prometheus; `make deps`)")
    return path


def test_prometheus_scrape_config_and_rules_pass_promtool():
    tool = promtool()
    for args in (["check", "config", os.path.join(EXAMPLES, "prometheus.yml")],
                 ["check", "rules", os.path.join(EXAMPLES, "ivs-autoscaler-alerts.yml")],
                 ["test", "rules", os.path.join(EXAMPLES, "ivs-autoscaler-alerts.test.yml")]):
        p = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr


def test_alert_rules_use_only_exported_metrics():
    with open(os.path.join(EXAMPLES, "ivs-autoscaler-alerts.yml"), encoding="utf-8") as fh:
        rules = yaml.safe_load(fh)
    exported = daemon_metric_names()
    used = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            used |= set(re.findall(r"\bivs_autoscaler_\w+", rule["expr"]))
            assert rule["annotations"]["summary"], rule["alert"]
    assert used, "no rule uses a daemon metric"
    assert used <= exported, used - exported
    with open(os.path.join(EXAMPLES, "prometheus.yml"), encoding="utf-8") as fh:
        scrape = yaml.safe_load(fh)
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "ivs-autoscaler"]
    assert job["metrics_path"] == "/metrics"
