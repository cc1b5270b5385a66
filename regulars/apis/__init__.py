"""What Regulars' HTTP API clients share: the dlt sources that read GA4 and Meta, and the
activation client that writes Meta's Custom Audiences."""
