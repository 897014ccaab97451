# moto served one request at a time (see server/tests/moto/mod.rs for why); argv[1] = port.
# Shared by the server tests and opsctl's live-connections test (include_str!).
import sys
from werkzeug.serving import BaseWSGIServer, run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app)
BaseWSGIServer.request_queue_size = 4096
MotoRequestHandler.timeout = 5
run_simple("127.0.0.1", int(sys.argv[1]), DomainDispatcherApplication(create_backend_app),
           threaded=False, request_handler=MotoRequestHandler)
