"""dblink: super-resolved SMLM videos from localization tables (DBlink, Saguy et al.)."""
__version__ = "0.1.0"
