"""The simulator behind `leadflow simulate`: a seeded, realistic touchpoint stream of a car-dealer
group, with the ground truth (who is who, who bought, what is junk) to grade the pipeline against.

`scenario` generates (pure, deterministic); `runner` publishes to Kafka or to the HTTP API.
"""
