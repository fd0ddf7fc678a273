"""Pages a person opens: the portfolio status dashboard."""

from raycore.reporting.status_page import ModelStatus, collect_status, render_status_page

__all__ = ["ModelStatus", "collect_status", "render_status_page"]
