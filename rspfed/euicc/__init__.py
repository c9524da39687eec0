"""Software eUICC: ISD-R (ES10a/b/c), USIM file system, APDU front end, store, vpcd."""

__all__: list[str] = []
