from components.results_report.component import ResultsReport

__all__ = ["ResultsReport"]
