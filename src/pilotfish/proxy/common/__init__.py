"""What every layer of the proxy shares: typed errors, stats and histograms, back-off, substitution formats."""
