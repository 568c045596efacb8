"""The way back: follow a queued job on its status message, then deliver the outcome to its owner — the
picture kept for the again buttons, the result posted in the job's channel as a message of the bot's own
(naming and pinging only the owner; a reply that cannot fail for a deleted message), by direct message when
the channel refuses it, held for `stylize last` when the DMs refuse it too — and, at start-up, the jobs a
previous run left behind.

A held painting waits in the store (bot.storage.undelivered: across restarts, for keep_days) while the store
keeps jobs; else (no storage, read-only, keep_days 0, or the disk cap reached) in memory, for a day, until a
restart. Its owner is told once, privately, the next time they use the bot in any way: a command (the cog
asks held_news), a button, a form or a menu (the interaction listener here).

Nothing here uses an interaction's token (it expires after 15 minutes, and a job may wait longer): the status
message is edited, and the result posted, through the channel."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import discord
from PIL import Image

from engine import movie
from engine.stamp import Stamp, StyleCredit

from ..errors import answer
from ..jobs import Detached, Job, Status, settings_json, short_id
from ..render import credits_text, encode_for_upload, fit, preview_png, result_embed, status_text
from ..storage import HOLD_PER_OWNER, HeldPainting, StorageUnavailable
from .buttons import cancel_view, result_view
from .request import Inputs, Origin

if TYPE_CHECKING:
    from .host import Host

log = logging.getLogger(__name__)

FINAL_WORD_TIMEOUT = 15.0  # seconds close() waits for jobs' last messages (shutdown)
HOLD_SECONDS = 24 * 3600.0  # how long a painting is held in memory (without the store)
HOLD_IN_MEMORY = 256 * 1024**2  # bytes held in memory for all owners together; the oldest go first (the newest stays)
ANSWER_WAIT = 3.0  # seconds an interaction's handler has to answer (Discord's limit) before the news follows it
ANIMATE_HINT = "(Your photo is animated: I painted its first frame. Add `animate=true` to paint every frame.)"
RESTARTING = "⏸️ I'm restarting — job `{id}` keeps its place, and I'll post the picture here when I'm back."
CHANNEL_GONE = (discord.NotFound, discord.Forbidden)  # the channel was deleted, or the bot may not see it
MISSING_ACCESS = 50001  # Discord's code for a channel the bot may no longer see


@dataclass(frozen=True)
class Upload:
    """A file to post: kept as bytes, so it can be sent again (to the owner's DMs) after a refusal."""

    data: bytes
    filename: str

    def file(self) -> discord.File:
        return discord.File(io.BytesIO(self.data), self.filename)


@dataclass(frozen=True)
class Held:
    """A painting neither its channel nor its owner's DMs would take, waiting for `stylize last`."""

    job: str  # the job's id
    text: str
    uploads: tuple[Upload, ...]
    embed: discord.Embed | None
    at: float  # time.monotonic() when held in memory
    stored: bool = False  # held in the store, not in memory
    poster: int | None = None  # who posted the photo, when known: their `forget` deletes it too

    @classmethod
    def from_store(cls, painting: HeldPainting) -> Held:
        embed = None if painting.embed is None else discord.Embed.from_dict(json.loads(painting.embed))
        return cls(painting.job, painting.text, tuple(Upload(data, name) for name, data in painting.files), embed,
                   0.0, stored=True)


class StatusMessage:
    """A job's status message; once it is gone (404: deleted) or out of sight (403, Missing Access: the bot lost
    View Channel) nobody edits it again — each refused edit counts towards Discord's limit on invalid requests."""

    def __init__(self, message: discord.PartialMessage | None) -> None:
        self.message = message

    async def edit(self, **changes: Any) -> None:
        """Edit it; a failure (deleted, rate-limited for too long) only costs that edit."""
        if self.message is None:
            return
        if changes.get("content") is not None:
            changes["content"] = fit(changes["content"])
        try:
            await self.message.edit(**changes)
        except discord.NotFound:
            log.info("status message %s is gone: no more updates", self.message.id)
            self.message = None
        except discord.Forbidden as error:
            if error.code != MISSING_ACCESS:  # e.g. Attach Files taken away: the next edit may work
                log.warning("could not edit status message %s: %s", self.message.id, error)
                return
            log.info("status message %s is out of sight: no more updates", self.message.id)
            self.message = None
        except discord.HTTPException as error:
            log.warning("could not edit status message %s: %s", self.message.id, error)


class Delivery:
    """Followers of the jobs in flight; `resume` picks up a previous run's, `close` waits for the last words."""

    def __init__(self, bot: Host) -> None:
        self.bot = bot
        self.config = bot.config
        self._followers: set[asyncio.Task[None]] = set()
        self._posting: set[asyncio.Future[None]] = set()  # queued jobs whose status message is on its way
        self._recovery: asyncio.Task[None] | None = None
        self._held: dict[int, list[Held]] = {}  # owner id → paintings held in memory, oldest first
        self._untold: set[int] = set()  # owners who may not have been told of what is held for them
        self._fetching: dict[int, asyncio.Lock] = {}  # owner id → one `last` at a time
        self._holding: set[str] = set()  # jobs just held, for their status line

    def start(self) -> None:
        self._recovery = asyncio.create_task(self._resume(), name="stylize-recover")
        self.bot.add_listener(self._on_interaction, "on_interaction")

    async def close(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
        if self._posting:  # a job queued just before the stop gets its follower once its status is posted
            await asyncio.wait(self._posting, timeout=FINAL_WORD_TIMEOUT)
        if self._followers:  # the backend has ended every job by now; let them post their last word
            await asyncio.wait(self._followers, timeout=FINAL_WORD_TIMEOUT)

    @contextlib.asynccontextmanager
    async def posting(self) -> AsyncIterator[None]:
        """While a queued job's status message is on its way: `close` waits for it (and then its follower), so
        a stop at that moment still tells the owner, instead of closing the connection under the post."""
        posted = asyncio.get_running_loop().create_future()
        self._posting.add(posted)
        try:
            yield
        finally:
            self._posting.discard(posted)
            posted.set_result(None)

    def follow(self, origin: Origin, job: Job, status: discord.PartialMessage | None, keep: Inputs | None = None
               ) -> None:
        """Follow `job` to its end; `keep`: it was submitted in this run, so its inputs are at hand to keep."""
        task = asyncio.create_task(self._follow(origin, job, StatusMessage(status), keep),
                                   name=f"stylize-job-{job.id}")
        self._background(task)

    def _background(self, task: asyncio.Task[Any]) -> None:
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)

    # ------------------------------------------------------------------------------ held pictures

    @property
    def stores(self) -> bool:
        """Whether held paintings go to the store (else to memory)."""
        return self.bot.store.keeps_jobs

    def terms(self) -> str:
        """How long a painting is held, for the members."""
        if self.stores:
            return f"for {self.bot.store.keep_days:g} day{'s' if self.bot.store.keep_days != 1 else ''}"
        return "for a day, and not across a restart of mine"

    async def held_news(self, user_id: int, prefix: str, *, public: bool) -> str | None:
        """Once per painting held: the note that tells `user_id` how to fetch what could not be delivered. Why it
        was not delivered (their DMs are closed to the bot) is said only when the note is private: a `public`
        one (a prefix command's reply) is read by the whole channel."""
        if user_id not in self._untold:
            return None
        self._untold.discard(user_id)
        jobs = [h.job for h in self._fresh(user_id)]
        if self.stores:
            with contextlib.suppress(StorageUnavailable):  # logged by the store; told next time it works
                jobs += await self.bot.store.tell_held(user_id)
        if not jobs:
            return None
        many = len(jobs) > 1
        listed = ", ".join(f"`{short_id(job)}`" for job in jobs)
        why = "" if public else " (I may not post where you asked, and your DMs are closed to me)"
        return (f"📬 I painted job{'s' if many else ''} {listed} for you but could not deliver "
                f"{'them' if many else 'it'}{why} "
                f"— `{prefix}stylize last` (or `/stylize last`) posts {'them' if many else 'it'} where you use it.")

    @contextlib.asynccontextmanager
    async def fetching(self, user_id: int) -> AsyncIterator[None]:
        """One `last` of a member at a time: a second one waits for the first to post (and release) what is
        held, so it cannot post the same painting again."""
        async with self._fetching.setdefault(user_id, asyncio.Lock()):  # a lock per member who used `last`
            yield

    async def held(self, user_id: int) -> list[Held]:
        """What is held for `user_id`, oldest first; each stays held until `delivered`."""
        held = self._fresh(user_id)
        if self.stores:
            held = [*map(Held.from_store, await self.bot.store.held(user_id)), *held]
        return held

    async def delivered(self, user_id: int, painting: Held) -> None:
        """`painting` reached its owner: no longer held."""
        if painting.stored:
            await self.bot.store.release(painting.job)
        else:
            self._held[user_id] = [h for h in self._fresh(user_id) if h is not painting]

    async def forget(self, user_id: int) -> int:
        """Delete what is held for `user_id`, and what is held for others painted from their photos (their
        `forget`); how many paintings that was."""
        gone = len(self._fresh(user_id))
        self._held.pop(user_id, None)
        self._untold.discard(user_id)
        for owner in list(self._held):
            kept = [h for h in self._held[owner] if h.poster != user_id]
            gone += len(self._held[owner]) - len(kept)
            self._held[owner] = kept
            if not kept:
                del self._held[owner]
        if self.bot.store.writable:  # also what was stored before keep_days became 0
            gone += await self.bot.store.forget_held(user_id)
        return gone

    def _fresh(self, user_id: int) -> list[Held]:
        now = time.monotonic()
        held = [h for h in self._held.get(user_id, []) if now - h.at < HOLD_SECONDS]
        if held:
            self._held[user_id] = held
        else:
            self._held.pop(user_id, None)
        return held

    def _trim(self) -> None:
        """Bound what is held in memory for everyone: expired paintings go (also of owners who never come back),
        then the oldest beyond HOLD_IN_MEMORY bytes — a flood of undeliverable jobs (a channel the bot lost, its
        members' DMs closed, the disk cap reached) cannot grow the bot's memory without end."""
        for owner in list(self._held):
            self._fresh(owner)
        held = sorted(((h.at, owner, h) for owner, paintings in self._held.items() for h in paintings),
                      key=lambda entry: entry[0])
        size = sum(len(u.data) for _, _, h in held for u in h.uploads)
        for _, owner, oldest in held[:-1]:
            if size <= HOLD_IN_MEMORY:
                break
            size -= sum(len(u.data) for u in oldest.uploads)
            log.warning("dropped the painting held for job %s: paintings held in memory passed %d bytes", oldest.job,
                        HOLD_IN_MEMORY)
            self._held[owner] = [h for h in self._held[owner] if h is not oldest]
            if not self._held[owner]:
                del self._held[owner]

    async def _hold(self, job: Job, text: str, uploads: list[Upload], embed: discord.Embed | None,
                    poster: int | None) -> None:
        """Hold a painting for its owner (of a photo `poster` posted, when known): in the store while it keeps
        jobs, else (or when it is full or fails) in memory; the newest HOLD_PER_OWNER either way."""
        stored = False
        if self.stores:
            painting = HeldPainting(job.id, job.user_id, text, tuple((u.filename, u.data) for u in uploads),
                                    None if embed is None else json.dumps(embed.to_dict()), poster)
            try:
                stored = await self.bot.store.hold(painting)
            except StorageUnavailable:
                pass  # logged by the store
            if not stored:
                log.warning("could not store undelivered job %s (the disk cap, or a failure): held in memory", job.id)
        if not stored:
            held = [*self._fresh(job.user_id), Held(job.id, text, tuple(uploads), embed, time.monotonic(),
                                                    poster=poster)]
            self._held[job.user_id] = held[-HOLD_PER_OWNER:]
            self._trim()
        self._untold.add(job.user_id)
        self._holding.add(job.id)

    async def _on_interaction(self, interaction: discord.Interaction) -> None:
        """The news of held paintings for whoever uses a button, a form or a menu, as a private note once the
        handler has answered — unless it answered with a form (the form's sending tells them). Slash commands
        are the cog's: their first answer may be public."""
        user = interaction.user
        if user.id not in self._untold or interaction.type not in (
                discord.InteractionType.component, discord.InteractionType.modal_submit,
                discord.InteractionType.application_command):
            return
        if interaction.type is discord.InteractionType.application_command and \
                (interaction.data or {}).get("type", 1) == discord.AppCommandType.chat_input.value:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ANSWER_WAIT
        while not interaction.response.is_done():
            if loop.time() > deadline:
                return
            await asyncio.sleep(0.05)
        if interaction.response.type is discord.InteractionResponseType.modal:
            return
        news = await self.held_news(user.id, self.config.prefix, public=False)
        if news:
            await answer(interaction, news)

    # --------------------------------------------------------------------------------- start-up

    async def _resume(self) -> None:
        """Follow the jobs the previous run left pending (recover() may wait for the backend's store); a job whose
        channel is gone is followed too — its outcome goes to its owner by DM (or is held), as it would without
        the restart, and the backend forgets it once delivered."""
        try:
            if self.stores:  # owners told of nothing yet, from a previous run
                with contextlib.suppress(StorageUnavailable):
                    self._untold |= await self.bot.store.untold_owners()
            jobs = await self.bot.backend.recover()
            if not jobs:
                return
            await self.bot.wait_until_ready()
            for job in jobs:
                gone = False
                try:
                    channel = self.bot.get_channel(job.channel_id) or await self.bot.fetch_channel(job.channel_id)
                except CHANNEL_GONE as error:
                    log.warning("recovered job %s: its channel %s is gone (%s) — its owner gets it by DM", job.id,
                                job.channel_id, error)
                    channel, gone = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id), True
                except discord.HTTPException as error:  # Discord failed: the next start tries again
                    log.warning("cannot reach channel %s for recovered job %s: %s", job.channel_id, job.id, error)
                    continue
                origin = Origin.at(channel, job.message_id)
                if gone or job.status_message_id is not None:  # gone: its status message went with it
                    status = None if gone else channel.get_partial_message(job.status_message_id)  # type: ignore
                else:  # it was submitted, but its status message never got recorded
                    status = await self._repost_status(origin, job)
                log.info("following job %s again (%s)", job.id, job.status.value)
                self.follow(origin, job, status)
        except Exception:
            log.exception("recovering jobs failed")

    async def _repost_status(self, origin: Origin, job: Job) -> discord.PartialMessage | None:
        try:
            posted = await origin.channel.send(f"🎨 Job `{job.short}`…", view=cancel_view(job.id),
                                               reference=origin.reference, mention_author=False)
        except discord.HTTPException as error:  # followed without one: the picture still goes to its owner
            log.warning("could not post a status message for recovered job %s: %s", job.id, error)
            return None
        await self.bot.backend.track(job.id, posted.id)
        return origin.channel.get_partial_message(posted.id)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------------------- following

    async def _follow(self, origin: Origin, job: Job, status: StatusMessage, keep: Inputs | None) -> None:
        """Edit the status message as the job moves, then deliver the outcome. Never raises."""
        backend = self.bot.backend
        done = asyncio.ensure_future(backend.result(job.id))
        shown: str | None = None
        preview: Image.Image | None = None
        try:
            while not (await asyncio.wait({done}, timeout=self.config.progress_interval))[0]:
                if status.message is None:  # deleted: nothing to update
                    continue
                snapshot = await backend.snapshot(job.id)
                if snapshot is None or snapshot.status.finished:
                    continue
                text = status_text(job.id, snapshot)
                changes: dict[str, Any] = {}
                if snapshot.preview is not None and snapshot.preview is not preview:
                    preview = snapshot.preview
                    data = await asyncio.get_running_loop().run_in_executor(None, preview_png, preview)
                    changes["attachments"] = [discord.File(io.BytesIO(data), "preview.png")]
                if text != shown or changes:
                    shown = text
                    await status.edit(content=text, **changes)
            finished = done.result()
            credits = keep.credits if keep is not None else (StyleCredit(),) * len(job.styles)
            kept = keep is not None and finished.status is Status.DONE and await self._keep(job, finished, keep)
            posted = await self._conclude(origin, finished, status, credits, buttons=kept,
                                          note=ANIMATE_HINT if keep is not None and keep.first_only else "",
                                          poster=None if keep is None else keep.owner)
            if kept and posted is not None:
                with contextlib.suppress(StorageUnavailable):  # logged by the store; only the menus miss it
                    await self.bot.store.note_message(job.id, posted.id)
        except Detached:  # the bot is stopping; the job is not: the next run delivers it
            await status.edit(content=RESTARTING.format(id=job.short))
        except Exception:
            log.exception("delivering job %s failed", job.id)

    async def _keep(self, submitted: Job, finished: Job, keep: Inputs) -> bool:
        """Keep a finished job's inputs and settings for [storage] keep_days (for the "again" buttons and the
        menus, which find it by its result message; `forget` by the photo's owner deletes them); whether they
        were kept."""
        store = self.bot.store
        if not store.keeps_jobs or finished.result is None or submitted.frames:  # the buttons paint stills
            return False
        extra = () if submitted.mask is None else (submitted.mask,)
        pictures = await asyncio.get_running_loop().run_in_executor(
            None, lambda: [preview_png(p) for p in (keep.photo, *submitted.styles, *extra)])
        try:
            return await store.keep_job(submitted.id, keep.owner, submitted.guild_id,
                                        settings_json(finished.result.settings), pictures, given=finished.given,
                                        masked=submitted.mask is not None,
                                        styles=json.dumps([dataclasses.asdict(c) for c in keep.credits]),
                                        ran_by=submitted.user_id, since=keep.gathered)
        except StorageUnavailable:
            return False  # logged by the store; the user has the picture already

    # ------------------------------------------------------------------------------- concluding

    async def _conclude(self, origin: Origin, job: Job, status: StatusMessage, credits: tuple[StyleCredit, ...],
                        buttons: bool = False, note: str = "", poster: int | None = None) -> discord.Message | None:
        """The picture (settings stamped inside, and the timelapse if asked for) or the painted animation, or the
        reason there is none, to the owner; then the final status line. The picture's message gets the "again"
        buttons when `buttons` (its inputs are kept) and ends with `note`; `poster` posted the photo, when known.
        Returns that message."""
        mention = f"<@{job.user_id}>"
        if job.status is Status.CANCELLED:
            await status.edit(content=f"🛑 Job `{job.short}` {job.error}.", view=None, attachments=[])
            if job.error != f"cancelled by {mention}":
                await self.send(origin, job, f"{mention} your job `{job.short}` was {job.error}.")
            return None
        encoded = None
        loop = asyncio.get_running_loop()
        if job.status is Status.DONE and job.durations_ms:
            assert job.result is not None
            try:
                movie_data, kind = await loop.run_in_executor(None, movie.encode, list(job.result.frames),
                                                              list(job.durations_ms), origin.upload_limit)
                encoded = movie_data, f"stylized.{kind}"
            except movie.AnimationTooLarge as error:
                job.error = (f"the animation is too large to upload here ({min(error.sizes.values()):,} bytes, "
                             f"the limit is {origin.upload_limit:,}) — try fewer frames or a smaller size")
        elif job.status is Status.DONE:
            assert job.result is not None
            encoded = await loop.run_in_executor(None, partial(encode_for_upload, job.result.image, origin.upload_limit,
                                                               settings=Stamp(job.result.settings, credits)))
            if encoded is None:
                job.error = "the picture is too large to upload here — try a smaller size"
        if encoded is None:
            await status.edit(content=f"❌ Job `{job.short}` failed: {job.error}.", view=None, attachments=[])
            await self.send(origin, job, f"{mention} sorry, your job `{job.short}` failed: {job.error}.")
            return None
        assert job.result is not None
        data, filename = encoded
        uploads = [Upload(data, filename)]
        text = f"{mention} here is your painting!" + (f" {note}" if note else "")
        if job.result.frames and not job.durations_ms:  # the picture has the upload limit first, the timelapse the rest
            try:
                movie_data, kind = await loop.run_in_executor(
                    None, movie.timelapse, job.result.frames, origin.upload_limit - len(data))
                uploads.append(Upload(movie_data, f"timelapse.{kind}"))
            except movie.AnimationTooLarge:
                text += " (The timelapse was too large to upload beside it, so I left it out.)"
        try:
            posted = await self.send(origin, job, text, uploads=uploads, view=result_view(job.id) if buttons else None,
                                     embed=result_embed(job, job.given, filename, credits_text(credits)), poster=poster)
        except discord.HTTPException as error:
            log.warning("could not upload the result of job %s: %s", job.id, error)
            await self.send(origin, job, f"{mention} your painting is ready, but Discord refused the upload "
                                         f"({error.text or error.status}) — try a smaller size.")
            posted = None
        if posted is not None:
            await status.edit(content=f"✅ Job `{job.short}` done in {job.result.elapsed:.1f} s.", view=None,
                              attachments=[])
        elif job.id in self._holding:
            self._holding.discard(job.id)
            await status.edit(content=f"📬 Job `{job.short}` is painted; its owner can fetch it with "
                                      f"`{self.config.prefix}stylize last`.", view=None, attachments=[])
        else:
            await status.edit(content=f"⚠️ Job `{job.short}` is painted, but I could not deliver it.", view=None,
                              attachments=[])
        return posted

    async def send(self, origin: Origin, job: Job, text: str, *, uploads: Sequence[Upload] = (),
                   poster: int | None = None, **options: Any) -> discord.Message | None:
        """`text` (and `uploads`) to the job's owner: in its channel, naming and pinging only them; where the
        bot may not post (or the channel is gone), by direct message; if neither would take a picture, it is held
        for `stylize last` (see held_news; `poster`: whose photo it is, when known). None if it was not delivered
        (logged). Any other refusal (e.g. 413, too large) is raised."""
        ping = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(job.user_id)],
                                       replied_user=False)
        try:
            return await origin.channel.send(fit(text), files=[u.file() for u in uploads], reference=origin.reference,
                                             allowed_mentions=ping, **options)
        except (discord.Forbidden, discord.NotFound) as refused:
            log.info("cannot post job %s in channel %s (%s): sending it to its owner", job.id, origin.channel.id,
                     refused)
        in_server = getattr(origin.channel, "guild", None) is not None or getattr(origin.channel, "guild_id", None)
        where = f"<#{origin.channel.id}>" if in_server else "our chat"
        try:
            owner = self.bot.get_user(job.user_id) or await self.bot.fetch_user(job.user_id)
            return await owner.send(fit(f"{text}\n(I couldn't post it in {where}, so it comes here.)"),
                                    files=[u.file() for u in uploads], allowed_mentions=ping, **options)
        except discord.HTTPException as error:
            log.warning("could not deliver job %s to %s, in the channel or by DM: %s", job.id, job.user_id, error)
            if uploads:
                await self._hold(job, text, list(uploads), options.get("embed"), poster)
            return None
