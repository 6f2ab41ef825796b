import json, os, sqlite3
_fd = os.open("verdicts", os.O_WRONLY | os.O_APPEND)
os.unlink("verdicts")
def dumps(o, **kw):
    return json.dumps(o, default=repr, **kw)
def emit(o):
    os.write(_fd, (dumps(o) + "\n").encode())
def report(case, ok, detail=None):
    emit({"case": case, "pass": ok, "detail": detail})
emit({"expect": ["row count", "rows"]})
spec = json.load(open("expect.json"))
db = sqlite3.connect(":memory:")
try:
    db.executescript(open("setup.sql").read())
except Exception as e:
    report("setup", False, (type(e).__name__ + ": " + str(e))[:300])
    emit({"done": True})
    raise SystemExit(0)
query = open("answer.sql").read().strip()
try:
    rows = [list(r) for r in db.execute(query.rstrip().rstrip(";")).fetchall()]
except Exception as e:
    report("query", False, (type(e).__name__ + ": " + str(e))[:300])
    emit({"done": True})
    raise SystemExit(0)
want = spec["expect"]
def norm(r):
    return [round(v, 6) if isinstance(v, float) else v for v in r]
got = [norm(r) for r in rows]
want = [norm(r) for r in want]
if not spec["ordered"]:
    key = lambda r: dumps(r, sort_keys=True)
    got, want = sorted(got, key=key), sorted(want, key=key)
report("row count", len(got) == len(want), None if len(got) == len(want) else f"{len(got)} rows, want {len(want)}")
same = got == want
report("rows", same, None if same else ("first rows " + dumps(got[:3]))[:300])
emit({"done": True})
