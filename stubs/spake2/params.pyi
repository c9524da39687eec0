class _Params:
    M_str: bytes
    N_str: bytes
    S_str: bytes
    def __init__(self, group: object, M: bytes = ..., N: bytes = ..., S: bytes = ...) -> None: ...

