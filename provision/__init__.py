"""Provisioning stage: broker account, ACL, config and registry entry of a new device,
and installing the firmware on it (``softplace device add`` / ``softplace device install``)."""
