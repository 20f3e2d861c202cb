"""Promises with a known defect, each replayed in test_found.py: the campaign goes on past them
(it prints what it saw) and fails on any other. CAMPAIGN_TOLERATE=id,id replaces this set
(empty: tolerate nothing). A promise leaves the set when its last replay is fixed.
"""
KNOWN = {
    # Every promise the campaign found broken on c3fe040 is kept now (test_regressions.py).
}
