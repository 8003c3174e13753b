"""The web app: branch reports, live view, privacy and releases pages, and a JSON API."""
