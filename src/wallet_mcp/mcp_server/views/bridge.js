/* The app side of MCP Apps (ext-apps 2026-01-26): JSON-RPC 2.0 over postMessage with the host.
   ui/initialize -> ui/notifications/initialized, then the host's tool-input / tool-result /
   host-context-changed notifications; tools/call goes back through the host, which checks it
   like any call of its own. No network, no storage, no eval: the host's default CSP is enough. */
"use strict";
const App = (() => {
  const PROTOCOL_VERSION = "2026-01-26";
  const REQUEST_TIMEOUT_MS = 60000;
  const pending = new Map();
  const handlers = new Map();
  const context = {};
  let nextId = 1;

  function post(message) {
    window.parent.postMessage(message, "*");
  }
  function request(method, params) {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = window.setTimeout(() => {
        pending.delete(id);
        reject(new Error("the host did not answer " + method));
      }, REQUEST_TIMEOUT_MS);
      const settle = (fn) => (value) => {
        window.clearTimeout(timer);
        fn(value);
      };
      pending.set(id, { resolve: settle(resolve), reject: settle(reject) });
      post({ jsonrpc: "2.0", id, method, params: params || {} });
    });
  }
  function notify(method, params) {
    post({ jsonrpc: "2.0", method, params: params || {} });
  }
  function respond(id, result) {
    post({ jsonrpc: "2.0", id, result });
  }

  function applyContext(update) {
    Object.assign(context, update || {});
    const root = document.documentElement;
    const prefersDark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
    const theme = context.theme === "dark" || context.theme === "light" ? context.theme : prefersDark ? "dark" : "light";
    root.dataset.theme = theme;
    root.style.colorScheme = theme;
    root.dataset.displayMode = context.displayMode || "inline";
    const variables = (context.styles && context.styles.variables) || {};
    for (const [name, value] of Object.entries(variables)) {
      // only the spec's custom properties, as values (never markup or rules)
      if (/^--[a-z0-9-]+$/.test(name) && typeof value === "string" && value) root.style.setProperty(name, value);
    }
    const dims = context.containerDimensions || {};
    if (typeof dims.maxHeight === "number") root.style.maxHeight = dims.maxHeight + "px";
    if (typeof dims.height === "number") root.style.height = "100vh";
  }

  window.addEventListener("message", (event) => {
    if (event.source !== window.parent) return; // only the host speaks to us
    const message = event.data;
    if (!message || message.jsonrpc !== "2.0") return;
    if (message.method === undefined) {
      const waiting = pending.get(message.id);
      if (!waiting) return;
      pending.delete(message.id);
      if (message.error) waiting.reject(new Error(message.error.message || "the host refused the request"));
      else waiting.resolve(message.result || {});
      return;
    }
    const params = message.params || {};
    if (message.method === "ui/notifications/host-context-changed") applyContext(params);
    else if (message.method === "ui/resource-teardown" || message.method === "ping") respond(message.id, {});
    else if (handlers.has(message.method)) handlers.get(message.method)(params);
    else if (message.id !== undefined) post({ jsonrpc: "2.0", id: message.id, error: { code: -32601, message: "Method not found" } });
  });

  let lastSize = "";
  function reportSize() {
    const width = Math.ceil(document.documentElement.scrollWidth);
    const height = Math.ceil(document.documentElement.scrollHeight);
    const size = width + "x" + height;
    if (size !== lastSize) {
      lastSize = size;
      notify("ui/notifications/size-changed", { width, height });
    }
  }

  async function connect(name) {
    const result = await request("ui/initialize", {
      appInfo: { name, version: "1.0.0" },
      appCapabilities: { availableDisplayModes: ["inline", "fullscreen"] },
      protocolVersion: PROTOCOL_VERSION,
    });
    applyContext(result.hostContext || {});
    notify("ui/notifications/initialized", {});
    if (window.ResizeObserver) new ResizeObserver(() => window.requestAnimationFrame(reportSize)).observe(document.body);
    return result;
  }

  function resultText(result) {
    return ((result && result.content) || []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
  }

  async function callTool(name, args) {
    const result = await request("tools/call", { name, arguments: args || {} });
    if (result.isError) throw new Error(resultText(result) || name + " failed");
    if (!result.structuredContent) throw new Error(name + " answered without structured content");
    return result;
  }

  function on(method, handler) {
    handlers.set(method, handler);
  }

  /* DOM helpers: text goes in as text nodes, never as markup */
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    for (const child of [].concat(children || [])) {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }
  const SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    for (const child of [].concat(children || [])) {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }
  function setAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  function locale() {
    return context.locale || navigator.language || "en-US";
  }
  function money(amount, currency) {
    try {
      return new Intl.NumberFormat(locale(), { style: "currency", currency }).format(Number(amount));
    } catch (_) {
      return amount + " " + currency;
    }
  }
  function monthLabel(month, style) {
    const [year, m] = month.split("-").map(Number);
    const date = new Date(Date.UTC(year, m - 1, 1));
    const options =
      style === "short" ? { month: "short", timeZone: "UTC" }
      : style === "short-year" ? { month: "short", year: "2-digit", timeZone: "UTC" }
      : { month: "long", year: "numeric", timeZone: "UTC" };
    return new Intl.DateTimeFormat(locale(), options).format(date);
  }
  function date(epochMs) {
    return new Intl.DateTimeFormat(locale(), { year: "numeric", month: "short", day: "numeric", timeZone: context.timeZone || "UTC" }).format(new Date(epochMs));
  }
  function status(message, isError) {
    const node = document.getElementById("status");
    if (!node) return;
    node.textContent = message || "";
    node.classList.toggle("error", Boolean(isError));
  }
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  return { connect, callTool, on, el, svg, money, monthLabel, date, status, clear, context, resultText };
})();
