"""Where the pipeline decides: paired statistics on the same eval examples.

stats.py        the tests, intervals and the smallest detectable difference
tfma_metric.py  the TFMA metric that counts, per eval example, which of two
                models was right (the 2x2 table the tests read)
floor.py        the absolute top-1 floor, from the class count at run time
"""
