"""``report.html``: the offline page of a run's clusters, trees and changes (``page.write_report``)."""

from provenance.report.page import REPORT_NAME, ReportInfo, render_report, write_report

__all__ = ["REPORT_NAME", "ReportInfo", "render_report", "write_report"]
