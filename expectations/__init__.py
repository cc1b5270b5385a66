"""Great Expectations suites and the gate that promotes validated rows from landing to the lake."""
