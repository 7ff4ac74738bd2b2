"""leadflow: the upstream publisher SDK, the CLI, the simulator and the runtime shared by services.

Upstream teams use `leadflow.publish(...)` or `leadflow.Publisher`:

    from leadflow import Publisher
    with Publisher("127.0.0.1:9092") as pub:
        pub.publish({"event_id": "...", "event_type": "form_submitted", ...})
"""

from leadflow.sdk import Publisher, publish

__all__ = ["Publisher", "publish"]
