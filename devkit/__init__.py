"""The development kit: the demo, the occupancy simulation, the virtual sensor, an embedded
broker, and launchers for the real mosquitto and influxd that tests and benches share."""
