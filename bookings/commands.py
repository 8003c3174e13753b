"""``softplace bookings list/accept/decline/reconcile/purge``: the operator's side of the
marketplace."""

from __future__ import annotations

import datetime as dt
import logging
import time

import click

from bookings.core import BookingRefusedError, Status
from bookings.settings import BookingsSettings
from bookings.store import Booking
from softplace.cli import AppContext, console, pass_app
from softplace.errors import StorageError
from softplace.timeutil import s_to_ms

log = logging.getLogger(__name__)


@click.group()
def bookings() -> None:
    """Booking requests for offered rooms (in bookings.path)."""


@bookings.command("list")
@click.option("--status", type=click.Choice([s.value for s in Status]), default=None)
@pass_app
def list_bookings(app: AppContext, status: str | None) -> None:
    """One line per booking: id, status, site, room, start, end, attendance, requester."""
    from bookings.store import BookingStore

    section = app.section(BookingsSettings)
    with BookingStore(section.file(app.config)) as store:
        found = store.all(Status(status) if status else None)
        if not found:
            click.echo(f"no {status} bookings" if status else "no bookings")
        for b in found:
            start = dt.datetime.fromtimestamp(b.window.start_ms / 1000, dt.UTC)
            end = dt.datetime.fromtimestamp(b.window.end_ms / 1000, dt.UTC)
            who = b.requester.name if b.requester else "(deleted)"
            click.echo(f"{b.id}\t{b.status.value}\t{b.site}\t{b.room}\t"
                       f"{start:%Y-%m-%dT%H:%MZ}\t{end:%Y-%m-%dT%H:%MZ}\t{b.attendance}\t{who}")


def _publish(app: AppContext, bookings: list[Booking], now_ms: int) -> int:
    """Write the accepted ``bookings`` to the store's ``booking`` series (what the detector
    and the releases read); the number of points written."""
    from bookings import ghosts
    from softplace.registry import load_registry
    from softplace.storage import open_store

    store = open_store(app.settings)
    try:
        return ghosts.publish_all(store, load_registry(app.settings.registry), bookings,
                                  app.section(BookingsSettings), now_ms)
    finally:
        store.close()


def _decide(app: AppContext, booking_id: str, accept: bool) -> None:
    from bookings.store import BookingStore

    section = app.section(BookingsSettings)
    now = s_to_ms(time.time())
    with BookingStore(section.file(app.config)) as store:
        try:
            booking = store.decide(booking_id, accept, now)
        except KeyError as err:
            raise click.UsageError(f"no booking {booking_id!r}") from err
        except BookingRefusedError as err:
            raise click.ClickException(str(err)) from err
    console.print(f"booking {booking.id} {booking.status.value}")
    if booking.status is Status.ACCEPTED:
        try:
            _publish(app, [booking], now)
        except StorageError as err:  # the decision stands; reconcile writes it later
            log.warning("booking %s not written to the store yet: %s", booking.id, err)


@bookings.command("accept")
@click.argument("booking_id")
@pass_app
def accept(app: AppContext, booking_id: str) -> None:
    """Accept a pending request (refused if it overlaps an accepted booking)."""
    _decide(app, booking_id, accept=True)


@bookings.command("decline")
@click.argument("booking_id")
@pass_app
def decline(app: AppContext, booking_id: str) -> None:
    """Decline a pending request."""
    _decide(app, booking_id, accept=False)


@bookings.command("reconcile")
@pass_app
def reconcile(app: AppContext) -> None:
    """Compare ended accepted bookings with the sensors (used, ghost or no readings) and
    store every accepted booking in the `booking` series; run it daily, before exports."""
    from bookings.store import BookingStore

    section = app.section(BookingsSettings)
    with BookingStore(section.file(app.config)) as store:
        accepted = store.all(Status.ACCEPTED)
    written = _publish(app, accepted, s_to_ms(time.time()))
    console.print(f"{written} booking(s) written to the store")


@bookings.command("purge")
@pass_app
def purge(app: AppContext) -> None:
    """Delete requesters' personal data past bookings.personal_data_days."""
    from bookings.store import BookingStore

    section = app.section(BookingsSettings)
    with BookingStore(section.file(app.config)) as store:
        gone = store.purge_personal(s_to_ms(time.time()), section.personal_data_days)
    console.print(f"{gone} requester record(s) deleted")
