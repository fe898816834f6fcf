"""The test harness's own ROS behaviour: a client's first service request survives a lost response."""

from __future__ import annotations

import os
import threading

from prerequisites import needs_ros

pytestmark = needs_ros("the harness's service calls")

DOMAIN_ID = 1 + (os.getpid() + 71) % 100  # an offset no other test module uses


def test_a_first_request_is_sent_again_until_answered(monkeypatch):
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from std_srvs.srv import Trigger
    import ros_harness.client as harness

    harness.configure_this_process(DOMAIN_ID)
    monkeypatch.setattr(harness, "RESEND_S", 1.0)
    # The server appears after the first request went out, so that request gets no answer, as when the
    # server's response writer has not matched the client yet.
    context = Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID)
    calls = []

    def serve() -> None:
        executor = SingleThreadedExecutor(context=context)
        node = rclpy.create_node("reset_server", context=context)
        node.create_service(Trigger, "/segtrack/reset",
                            lambda request, response: calls.append(1) or Trigger.Response(success=True))
        executor.add_node(node)
        try:
            executor.spin()
        except ExternalShutdownException:  # the test is over
            pass

    server = threading.Timer(0.3, serve)
    try:
        with harness.TrackerClient(DOMAIN_ID) as client:
            server.start()
            assert client.reset().success
            assert calls, "the answer came from the server"
    finally:
        context.try_shutdown()
        if server.is_alive():
            server.join(10)
