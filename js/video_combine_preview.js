// Video Combine preview: a <video controls> player WITH SOUND on the InfiniteTalk Video Combine node.
//
// The node returns two things in its UI output:
//   images + animated: the entry ComfyUI's stock front end plays (same shape as its own SaveVideo);
//   infinitetalk_video: details for this player (duration, fps, size, sound, which writer ran).
// This extension shows one player (unmuted, with controls, sized to the video) and a caption (file name,
// duration, size, sound). Once that player has loaded the file it removes the stock preview of the same
// file from this node so the video is not shown twice; until then, or if it cannot play the file, the
// stock preview stays. Front ends without this extension still play the stock entry.
// Sizing works on the LiteGraph canvas (DOM-widget layout, or computeSize with or without a width) and
// on the Vue node renderer (the element's CSS min-height).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODE_CLASS = "InfiniteTalkVideoCombine";
const PLAYER_WIDGET = "infinitetalk_video_player";
const STOCK_PREVIEW_WIDGET = "video-preview";
const VUE_STOCK_PREVIEW_SELECTOR = ".video-preview";
const CAPTION_HEIGHT = 34;
const MIN_VIDEO_HEIGHT = 80;
const DEFAULT_WIDTH = 300;

function viewUrl(entry) {
  const params = new URLSearchParams({
    filename: entry.filename,
    subfolder: entry.subfolder ?? "",
    type: entry.type ?? "output",
  });
  return api.apiURL(`/view?${params.toString()}`);
}

function describe(entry) {
  const parts = [entry.filename];
  if (typeof entry.duration === "number") parts.push(`${entry.duration.toFixed(2)} s`);
  if (entry.frames) parts.push(`${entry.frames} frames @ ${Number(entry.frame_rate).toFixed(2).replace(/\.00$/, "")} fps`);
  if (entry.width && entry.height) parts.push(`${entry.width}×${entry.height}`);
  parts.push(entry.has_audio ? "with sound" : "no sound");
  return parts.join(" · ");
}

function removeStockPreview(node) {
  // Only once our player has loaded the file: until then (or if it cannot play it) the stock preview stays.
  // With videoContainer set, the stock code reuses that (detached) container instead of adding its widget again.
  node.videoContainer = node.videoContainer ?? document.createElement("div");
  hideVueStockPreview(node);
  const widgets = node.widgets ?? [];
  const index = widgets.findIndex((w) => w?.name === STOCK_PREVIEW_WIDGET);
  if (index < 0) return;
  const widget = widgets[index];
  if (typeof node.removeWidget === "function") {
    node.removeWidget(widget);
  } else {
    widgets.splice(index, 1);
    widget.onRemove?.();
  }
}

function hideVueStockPreview(node) {
  // The Vue node renderer draws the stock preview as a component of the node's element (not a widget):
  // hide it there, and again whenever the node's element is re-rendered.
  const player = node.infinitetalkPlayer;
  const root = player?.container?.closest?.("[data-node-id]");
  if (!root) return;
  for (const el of root.querySelectorAll(VUE_STOCK_PREVIEW_SELECTOR)) {
    if (!el.contains(player.container) && el.style.display !== "none") el.style.display = "none";
  }
  if (!player.observer && typeof MutationObserver === "function") {
    player.observer = new MutationObserver(() => hideVueStockPreview(node));
    player.observer.observe(root, { childList: true, subtree: true });
  }
}

function nodeWidth(node, width) {
  // Some front ends call computeSize() without a width (1.27 while arranging widgets): use the node's.
  const w = Number(width);
  if (Number.isFinite(w) && w > 0) return w;
  const own = Number(node.size?.[0]);
  return Number.isFinite(own) && own > 0 ? own : DEFAULT_WIDTH;
}

function playerHeight(node, width) {
  const aspect = node.infinitetalkPlayer?.aspect || 9 / 16;
  return Math.max(MIN_VIDEO_HEIGHT, Math.round((nodeWidth(node, width) - 20) / aspect)) + CAPTION_HEIGHT;
}

function fitNode(node) {
  // Grow the node so the whole player shows (never shrink what the user sized).
  const player = node.infinitetalkPlayer;
  if (player) {
    player.container.style.minHeight = `${playerHeight(node)}px`; // Vue nodes size the element by CSS
    if (player.aspect) player.video.style.aspectRatio = String(player.aspect);
  }
  const size = node.computeSize?.();
  if (size && Number.isFinite(size[1])) {
    node.setSize?.([Math.max(node.size[0], size[0]), Math.max(node.size[1], size[1])]);
  }
  node.setDirtyCanvas?.(true, true);
}

function ensurePlayer(node) {
  if (node.infinitetalkPlayer) return node.infinitetalkPlayer;

  const container = document.createElement("div");
  Object.assign(container.style, {
    display: "flex", flexDirection: "column", width: "100%", height: "100%", gap: "2px", boxSizing: "border-box",
  });

  const video = document.createElement("video");
  Object.assign(video, { controls: true, playsInline: true, loop: false, muted: false, preload: "metadata" });
  // The video's box follows the video's aspect (set once known): a node taller than the video (a saved size, the
  // portrait guess made before the output arrived) leaves room below the caption instead of black bars.
  Object.assign(video.style, {
    width: "100%", height: "auto", flex: "0 1 auto", minHeight: "0", objectFit: "contain", background: "#000",
  });

  const caption = document.createElement("div");
  Object.assign(caption.style, {
    font: "11px sans-serif", color: "var(--descrip-text, #aaa)", lineHeight: "1.3", flex: "0 0 auto",
    overflow: "hidden", textOverflow: "ellipsis", wordBreak: "break-all", maxHeight: `${CAPTION_HEIGHT}px`,
  });
  container.append(video, caption);

  const player = { container, video, caption, aspect: null, entry: null, ready: false };
  node.infinitetalkPlayer = player;

  const widget = node.addDOMWidget(PLAYER_WIDGET, "infinitetalk-video", container, {
    serialize: false,
    hideOnZoom: false,
    getMinHeight: () => playerHeight(node),
  });
  if (typeof widget.computeLayoutSize !== "function") {
    // Front ends without DOM-widget layout size widgets through computeSize (with or without a width).
    widget.computeSize = (width) => [nodeWidth(node, width), playerHeight(node, width)];
  }
  player.widget = widget;

  video.addEventListener("loadedmetadata", () => {
    if (video.videoWidth && video.videoHeight) player.aspect = video.videoWidth / video.videoHeight;
    fitNode(node);
  });
  video.addEventListener("loadeddata", () => {
    player.ready = true;
    removeStockPreview(node);
    fitNode(node);
  });
  video.addEventListener("error", () => {
    player.ready = false;
    const entry = player.entry;
    caption.textContent =
      `This browser cannot play ${entry?.filename ?? "the video"} (${entry?.writer ?? "?"} writer). ` +
      "The file is saved; see the node's log for how to get a browser-playable MP4.";
    caption.style.color = "#e88";
  });
  // Let the canvas keep wheel zoom over the player.
  video.addEventListener("wheel", (e) => app.canvas?.processMouseWheel?.(e), { passive: true });
  return player;
}

function show(node, entry) {
  const player = ensurePlayer(node);
  player.entry = entry;
  player.ready = false;
  if (entry.width && entry.height) player.aspect = entry.width / entry.height;
  player.caption.style.color = "";
  let text = describe(entry);
  if (!entry.browser_playable) {
    text += ` · written by the ${entry.writer} fallback: may not play in browsers (install imageio-ffmpeg for H.264)`;
    player.caption.style.color = "#e8b86d";
  }
  player.caption.textContent = text;
  player.caption.title = (entry.notes ?? []).join("\n");
  player.video.src = viewUrl(entry);
  player.video.load();
  fitNode(node);
}

app.registerExtension({
  name: "InfiniteTalk.VideoCombinePreview",

  beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData?.name !== NODE_CLASS) return;

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      const result = onExecuted?.apply(this, arguments);
      const entry = message?.infinitetalk_video?.[0];
      if (entry?.filename) show(this, entry);
      return result;
    };

    // The stock preview loads asynchronously after onExecuted: drop it whenever it shows up next to ours.
    const onDrawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function () {
      const result = onDrawForeground?.apply(this, arguments);
      if (this.infinitetalkPlayer?.ready) removeStockPreview(this);
      return result;
    };

    const onRemoved = nodeType.prototype.onRemoved;
    nodeType.prototype.onRemoved = function () {
      const player = this.infinitetalkPlayer;
      if (player) {
        player.observer?.disconnect();
        player.video.pause();
        player.video.removeAttribute("src");
        player.video.load();
        this.infinitetalkPlayer = null;
      }
      return onRemoved?.apply(this, arguments);
    };
  },
});
