"""The JSON API (``/api/...``): the same pydantic models the CLI renders, with OpenAPI."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, Response

from detector.booked_store import stored_booked
from detector.report import SlotRow, build_report
from softplace.timeutil import MS_PER_DAY
from web import data
from web.deps import Ctx, Day, Db, Live, Places, Releases, Reports

SLOT_WEEKS = 4
router = APIRouter(prefix="/api")


@router.get("/sites", tags=["registry"])
def api_sites(_: Places, ctx: Ctx) -> list[data.SiteInfo]:
    return data.sites(ctx.registry)


@router.get("/sites/{site}/rooms", tags=["registry"])
def api_rooms(_: Places, ctx: Ctx, site: str) -> list[data.RoomInfo]:
    return data.rooms(ctx.site(site))


@router.get("/sites/{site}/live", tags=["live"])
def api_live(_: Live, ctx: Ctx, db: Db, site: str) -> data.SiteLive:
    return data.live_state(db, ctx.site(site), ctx.now_ms(), ctx.detector)


@router.get("/sites/{site}/report", tags=["reports"])
def api_report(_: Reports, ctx: Ctx, db: Db, site: str, start: Day = None, end: Day = None
               ) -> data.BranchReport:
    """``report`` is exactly what ``softplace report --format json`` prints."""
    placed = ctx.site(site)
    first, last = ctx.period(placed, start, end)
    return data.branch_report(db, ctx.registry, placed.id, first, last, ctx.detector)


@router.get("/sites/{site}/intervals", tags=["reports"])
def api_intervals(_: Reports, ctx: Ctx, db: Db, site: str, start: Day = None, end: Day = None
                  ) -> list[data.IntervalRow]:
    placed = ctx.site(site)
    first, last = ctx.period(placed, start, end)
    report = build_report(db, ctx.registry, placed.id, first, last, settings=ctx.detector)
    found = data.period_intervals(db, placed, first, last, report, ctx.detector)
    return data.intervals_rows(found, placed.tz)


@router.get("/sites/{site}/slots", tags=["slots"])
def api_slots(_: Reports, ctx: Ctx, db: Db, site: str, start: Day = None, end: Day = None,
              room: str | None = None) -> list[SlotRow]:
    placed = ctx.site(site)
    first, last = ctx.period(placed, start, end)
    report = build_report(db, ctx.registry, placed.id, first, last, settings=ctx.detector)
    return [s for s in report.idle_slots if room is None or s.room == room]


@router.get("/sites/{site}/slots.ics", tags=["slots"], response_class=Response,
            responses={200: {"content": {"text/calendar": {}}}})
def api_slots_ical(_: Reports, ctx: Ctx, db: Db, site: str, start: Day = None,
                   end: Day = None, room: str | None = None,
                   weeks: Annotated[int, Query(ge=1, le=52)] = SLOT_WEEKS) -> Response:
    placed = ctx.site(site)
    first, last = ctx.period(placed, start, end)
    report = build_report(db, ctx.registry, placed.id, first, last, settings=ctx.detector)
    now = dt.datetime.fromtimestamp(ctx.clock(), dt.UTC)
    ahead = stored_booked(db, placed, ctx.now_ms(), ctx.now_ms() + (weeks + 1) * 7 * MS_PER_DAY)
    body = data.slots_ical(report, placed, ctx.detector, room, weeks, now, ahead)
    return Response(body, media_type="text/calendar")


@router.get("/releases", tags=["releases"])
def api_releases(_: Releases, ctx: Ctx) -> list[data.ReleaseInfo]:
    return data.releases(ctx.web.releases_dir)


@router.get("/releases/{release_id}/{name}", tags=["releases"], response_class=FileResponse)
def api_release_file(_: Releases, ctx: Ctx, release_id: str, name: str) -> FileResponse:
    return release_download(ctx, release_id, name)


def release_download(ctx: Ctx, release_id: str, name: str) -> FileResponse:
    path = data.release_file(ctx.web.releases_dir, release_id, name)
    if path is None:
        raise HTTPException(404, "no such release file")
    return FileResponse(path, filename=f"{release_id}-{name}")
