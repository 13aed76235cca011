"""RabbitMQ: topology, the broker factory, publishing and the event-consumer wrapper."""
