"""Promises with a known defect, each replayed in test_found.py: the campaign goes on past them
(it prints what it saw) and fails on any other. CAMPAIGN_TOLERATE=id,id replaces this set
(empty: tolerate nothing). A promise leaves the set when its last replay is fixed.
"""
KNOWN = {
    "no-panic",     # issue 34 item 8
    "report",       # issue 34 item 5
    "no-false-alarm",  # issue 33 item 11
    "isolation",    # issue 33 item 10 (fixed); other targets' faults may still break it
    "escaped",      # issue 34 item 11
}
