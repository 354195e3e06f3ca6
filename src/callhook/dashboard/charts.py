"""The deliveries-per-hour chart, as geometry for an inline SVG rendered server-side. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from callhook.store.stats import HourBucket

WIDTH = 720
HEIGHT = 180
_PAD_LEFT = 36
_PAD_BOTTOM = 22
_PAD_TOP = 8


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    delivered_y: float
    delivered_h: float
    failed_y: float
    failed_h: float
    label: str  # "10:00"
    title: str  # "10:00–11:00 UTC: 12 delivered, 3 failed"
    show_label: bool


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    peak: int
    baseline_y: float
    top_y: float
    left: float
    summary: str


def hourly_chart(buckets: tuple[HourBucket, ...] | list[HourBucket]) -> Chart:
    """Stacked bars (delivered below, failed on top), scaled to the busiest hour."""
    peak = max((b.delivered + b.failed for b in buckets), default=0)
    scale_max = max(peak, 1)
    plot_h = HEIGHT - _PAD_BOTTOM - _PAD_TOP
    baseline = HEIGHT - _PAD_BOTTOM
    slot = (WIDTH - _PAD_LEFT) / max(len(buckets), 1)
    bars = []
    for i, b in enumerate(buckets):
        d_h = plot_h * b.delivered / scale_max
        f_h = plot_h * b.failed / scale_max
        start = b.start.strftime("%H:%M")
        end = f"{(b.start.hour + 1) % 24:02d}:00"
        bars.append(
            Bar(
                x=round(_PAD_LEFT + i * slot + slot * 0.15, 2),
                width=round(slot * 0.7, 2),
                delivered_y=round(baseline - d_h, 2),
                delivered_h=round(d_h, 2),
                failed_y=round(baseline - d_h - f_h, 2),
                failed_h=round(f_h, 2),
                label=start,
                title=f"{start}–{end} UTC: {b.delivered} delivered, {b.failed} failed",
                show_label=i % 4 == 3 or i == len(buckets) - 1,
            )
        )
    delivered = sum(b.delivered for b in buckets)
    failed = sum(b.failed for b in buckets)
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        bars=tuple(bars),
        peak=peak,
        baseline_y=baseline,
        top_y=_PAD_TOP,
        left=_PAD_LEFT,
        summary=(
            f"Deliveries per hour over the last 24 hours: {delivered} delivered, "
            f"{failed} failed; busiest hour {peak}."
        ),
    )
