"""Inbound webhooks: signatures, validation, rate limits, the durable event store, the receiver app and the sensor that turns events into flow runs."""
