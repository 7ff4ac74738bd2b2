"""What every service process shares: settings, the Faust app factory, the consumer error policy,
the store client, metrics and topic administration."""
