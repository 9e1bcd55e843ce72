"""IoT Core limits that both the simulator and the capacity model size themselves against.

Defined once here so that the simulator's connection pool and the model's count of connections
cannot drift apart.
"""

from __future__ import annotations

from typing import Final

IOT_PUBLISHES_PER_CONNECTION: Final = 100
"""IoT Core's publishes per second per connection; the excess is dropped, not queued."""
CONNECTION_HEADROOM: Final = 0.9
"""Auto-sized MQTT pools keep each connection at 90% of its publish limit."""
