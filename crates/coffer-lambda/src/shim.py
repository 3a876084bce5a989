# Coffer's Lambda runtime shim: runs one invocation of a Python handler the way AWS's managed
# runtime does. argv: HANDLER (module.function) TIMEOUT_MS. The event JSON arrives on stdin; one
# JSON document leaves on the original stdout: {"ok": true, "payload": RESULT} or
# {"ok": false, "payload": {"errorMessage", "errorType", "stackTrace"}}. Everything the handler
# prints goes to stderr (the function's log), as print() does in Lambda.
import importlib, json, os, sys, time, traceback

def main():
    handler, timeout_ms = sys.argv[1], int(sys.argv[2])
    started = time.monotonic()
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    class Context:
        function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        invoked_function_arn = os.environ.get("COFFER_LAMBDA_FUNCTION_ARN", "")
        memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        aws_request_id = os.environ.get("COFFER_LAMBDA_REQUEST_ID", "")
        log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        identity = None
        client_context = None

        @staticmethod
        def get_remaining_time_in_millis():
            return max(0, int(timeout_ms - (time.monotonic() - started) * 1000))

    def answer(ok, payload):
        out.write(json.dumps({"ok": ok, "payload": payload}))
        out.flush()

    def error(e, tb):
        return {
            "errorMessage": str(e),
            "errorType": type(e).__name__,
            "stackTrace": traceback.format_list(tb),
        }

    try:
        module_name, _, function_name = handler.rpartition(".")
        if not module_name:
            raise ValueError("Bad handler '%s': not enough values to unpack" % handler)
        sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name.replace("/", "."))
        except ImportError as e:
            answer(False, {"errorMessage": "Unable to import module '%s': %s" % (module_name, e),
                           "errorType": "Runtime.ImportModuleError", "stackTrace": []})
            return
        fn = getattr(module, function_name, None)
        if fn is None:
            answer(False, {"errorMessage": "Handler '%s' missing on module '%s'" % (function_name, module_name),
                           "errorType": "Runtime.HandlerNotFound", "stackTrace": []})
            return
        raw = sys.stdin.read()
        event = json.loads(raw) if raw.strip() else {}
    except Exception as e:
        answer(False, error(e, traceback.extract_tb(e.__traceback__)))
        return
    try:
        result = fn(event, Context())
    except Exception as e:
        # The handler's frames only, as AWS shows them.
        frames = traceback.extract_tb(e.__traceback__)[1:]
        traceback.print_exc()
        answer(False, error(e, frames))
        return
    try:
        json.dumps(result)
    except Exception as e:
        answer(False, {"errorMessage": "Unable to marshal response: %s" % e,
                       "errorType": "Runtime.MarshalError", "stackTrace": []})
        return
    answer(True, result)

main()
