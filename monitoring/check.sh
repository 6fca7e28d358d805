#!/usr/bin/env bash
# Checks the monitoring files: the alert rules parse and their unit tests pass (promtool, from
# Debian's prometheus package), every expression of the Grafana dashboard parses as PromQL, and
# every fedgate metric the rules and the dashboard name is one fedgate exports (src/metrics.rs).
set -euo pipefail
cd "$(dirname "$0")"
command -v promtool >/dev/null || { echo "promtool not found (apt-get install prometheus)" >&2; exit 1; }
promtool check rules prometheus/alerts.yml
promtool test rules prometheus/alerts.test.yml
python3 - <<'PY'
import json, re, subprocess, sys, tempfile, os
dash = json.load(open("grafana/fedgate-dashboard.json"))
exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
src = open("../src/metrics.rs").read()
known = set(re.findall(r'"(fedgate_[a-z_]+)"', src))
text = open("prometheus/alerts.yml").read() + "\n".join(exprs)
used = set(re.findall(r"\b(fedgate_[a-z_]+?)(?:_bucket|_sum|_count)?\b", text))
unknown = sorted(u for u in used if u not in known and u.rsplit("_", 1)[0] not in known)
if unknown:
    sys.exit(f"metrics not exported by fedgate: {unknown}")
# Each dashboard expression, with its template variables filled in, must parse: promtool checks
# it as the expression of a recording rule.
rules = {"groups": [{"name": "dashboard", "rules": [
    {"record": f"dashboard:expr{i}", "expr": e.replace("$instance", ".*").replace("$tenant", ".*")}
    for i, e in enumerate(exprs)]}]}
with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
    json.dump(rules, f)
try:
    subprocess.run(["promtool", "check", "rules", f.name], check=True, stdout=subprocess.DEVNULL)
finally:
    os.unlink(f.name)
print(f"dashboard: {len(dash['panels'])} panels, {len(exprs)} expressions parse; {len(used)} metric names known")
PY
