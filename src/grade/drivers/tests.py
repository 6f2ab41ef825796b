import ast, asyncio, importlib, inspect, json, os, sys
def main():
    write, fd = os.write, os.open("verdicts", os.O_WRONLY | os.O_APPEND)
    os.unlink("verdicts")
    encode, text, kind, callable_, coroutine = json.JSONEncoder().encode, str, type, callable, inspect.iscoroutine
    run_coroutine, load, compile_, exec_ = asyncio.run, importlib.import_module, compile, exec
    def emit(o):
        write(fd, (encode(o) + "\n").encode())
    def why(e):
        try:
            return (kind(e).__name__ + ": " + text(e))[:300]
        except BaseException:
            return "an exception that cannot be shown"
    def report(case, ok, detail=None):
        emit({"case": case, "pass": ok, "detail": detail})
    def tests():
        source = open("tests.py").read()
        try:
            tree = ast.parse(source, "tests.py")
        except SyntaxError as e:
            emit({"expect": ["load tests"]})
            return report("load tests", False, why(e))
        names = []
        for node in tree.body:
            found = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found = [node.name]
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                found = [t.id for t in targets if isinstance(t, ast.Name)]
            names += [n for n in found if n.startswith("test_") and n not in names]
        emit({"expect": names or ["tests"]})
        sys.path.insert(0, ".")
        try:
            load("solution")
        except BaseException as e:
            return report("import", False, why(e))
        ns = {"__name__": "tests"}
        try:
            exec_(compile_(source, "tests.py", "exec"), ns)
        except BaseException as e:
            return report("load tests", False, why(e))
        if not names:
            report("tests", False, "no test_ functions")
        for n in names:
            f = ns.get(n)
            if not callable_(f):
                report(n, False, "not a function")
                continue
            try:
                r = f()
                if coroutine(r):
                    run_coroutine(r)
                report(n, True)
            except BaseException as e:
                report(n, False, why(e))
    try:
        tests()
    finally:
        emit({"done": True})
main()
