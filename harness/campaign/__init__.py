"""The campaign runner: expands a campaign's matrix and drives every configuration through
compress -> build -> flash -> verify -> measure, durably and resumably."""
