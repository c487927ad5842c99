"""`genlab chat RUN`: a conversation in the terminal with a chat-tuned run, its answers streamed.

Lines starting with / are commands (/reset, /system TEXT, /temperature 0.7, /top-p, /top-k, /max-tokens, /seed,
/help, /bye); anything else is a message. Ctrl-C stops the answer being written and keeps the conversation; at
the prompt, Ctrl-D or /bye ends it."""

from __future__ import annotations

import sys

from genlab.cli.sample import add_content_filter_flag

HELP = ("type a message; /reset forgets the conversation, /system TEXT sets the system message, /temperature X, "
        "/top-p X, /top-k N, /max-tokens N and /seed N change the sampling, /bye ends (or Ctrl-D); Ctrl-C stops an "
        "answer")
# command -> (control, type)
SETTINGS = {"temperature": ("temperature", float), "top-p": ("top_p", float), "top-k": ("top_k", int),
            "max-tokens": ("max_new_tokens", int), "seed": ("seed", int)}


def add_parsers(sub) -> None:
    p = sub.add_parser("chat", help="talk with a chat-tuned run in the terminal",
                       description="A conversation with a run fine-tuned with --chat, answers streamed. " + HELP + ".")
    p.set_defaults(handler=run)
    p.add_argument("run", metavar="RUN", help="a run with a chat template (genlab finetune BASE DATA --chat)")
    p.add_argument("--system", help="the system message that opens the conversation")
    p.add_argument("--temperature", type=float, default=0.7, help="creativity dial (default 0.7)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k likeliest tokens")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling")
    p.add_argument("--max-new-tokens", type=int, default=256, help="the longest answer, in tokens (default 256)")
    p.add_argument("--seed", type=int, default=None, help="seed of the first answer (each next one takes the next)")
    p.add_argument("--checkpoint", default="last", choices=["last", "best"])
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"])
    add_content_filter_flag(p)


def run(a, argv: list[str]) -> None:
    from genlab import api
    from genlab.errors import GenlabError

    m = api.load(a.run, checkpoint=a.checkpoint, device=a.device, precision=a.precision,
                 content_filter=a.content_filter)
    m.chat_prompt([{"role": "user", "content": ""}], 1)  # no template: one line now, not after the first message
    controls = {"temperature": a.temperature, "top_k": a.top_k, "top_p": a.top_p, "max_new_tokens": a.max_new_tokens,
                "seed": a.seed}
    system = a.system
    history: list[dict] = []
    interactive = sys.stdin.isatty()
    print(f"genlab chat with {a.run}: {HELP}", file=sys.stderr)
    while True:
        try:
            line = input("you> " if interactive else "")
        except EOFError:
            return
        except KeyboardInterrupt:
            print("\n(Ctrl-D or /bye ends the chat)", file=sys.stderr)
            continue
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            name, _, value = line[1:].partition(" ")
            if name in ("bye", "exit", "quit"):
                return
            try:
                system = command(name, value.strip(), controls, history, system)
            except GenlabError as e:
                print(f"genlab: {e}", file=sys.stderr)
            continue
        history.append({"role": "user", "content": line})
        messages = ([{"role": "system", "content": system}] if system else []) + history
        answer = ""
        try:
            for piece in m.chat_stream(messages, **{k: v for k, v in controls.items() if v is not None}):
                answer += piece
                print(piece, end="", flush=True)
        except KeyboardInterrupt:
            print("\n(stopped)", file=sys.stderr, end="")
        except GenlabError as e:  # a message the filter refuses, a conversation past the context: say so, go on
            history.pop()
            print(f"genlab: {e}", file=sys.stderr)
            continue
        print(flush=True)
        history.append({"role": "assistant", "content": answer})
        if controls["seed"] is not None:
            controls["seed"] += 1  # the same session replays, and each answer draws afresh


def command(name: str, value: str, controls: dict, history: list[dict], system: str | None) -> str | None:
    """Apply a /command; the system message after it."""
    from genlab.errors import GenlabError

    if name == "reset":
        history.clear()
        print("(the conversation starts again)", file=sys.stderr)
        return system
    if name == "system":
        print(f"(system message {'set' if value else 'cleared'})", file=sys.stderr)
        return value or None
    if name == "help":
        print(HELP, file=sys.stderr)
        return system
    if name in SETTINGS:
        control, kind = SETTINGS[name]
        try:
            controls[control] = kind(value) if value not in ("", "none", "off") else None
        except ValueError:
            raise GenlabError(f"/{name} takes a {kind.__name__}, e.g. /{name} {kind(1)}") from None
        print(f"({name} {controls[control]})", file=sys.stderr)
        return system
    raise GenlabError(f"unknown command /{name}; {HELP}")
