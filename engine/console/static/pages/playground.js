// Playground: chat with an alias through the console's /playground/chat, which answers exactly as
// POST /v1/chat/completions does (headers, event stream, OpenAI-style errors).
//
// Every text that came from a model or the gateway is put in the page with textContent, never as
// HTML: an answer containing "<script>" or "<img onerror=...>" shows as those characters.
"use strict";

(function () {
  const LOG_TRIES = 20; // the request log is written every usage_flush_interval (0.5 s by default)
  const LOG_PAUSE_MS = 400;

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function milliseconds(value) {
    if (value === null || value === undefined || isNaN(value)) return "–";
    return value >= 10000 ? (value / 1000).toFixed(1) + " s" : Math.round(value) + " ms";
  }

  function dollars(text) {
    return text === null || text === undefined ? "not priced" : "$" + text;
  }

  function numberOrNull(text, parse) {
    if (text.trim() === "") return null;
    const value = parse(text);
    return isNaN(value) ? null : value;
  }

  // "502 · upstream_error (code): message" from an OpenAI-style error body, or what there is.
  async function describeFailure(response) {
    const text = await response.text();
    let error = null;
    try { error = JSON.parse(text).error; } catch (_) { /* not JSON: a console refusal, or a proxy's page */ }
    if (error && typeof error === "object") {
      const kind = [error.type, error.code ? "(" + error.code + ")" : ""].filter(Boolean).join(" ");
      return response.status + " · " + (kind ? kind + ": " : "") + (error.message || "no message");
    }
    if (response.status === 401) return "401 · Your console session has ended: reload the page and sign in again.";
    if (response.status === 403) return "403 · Refused: this page's CSRF token is no longer valid; reload the page.";
    return response.status + " " + response.statusText + (text ? ": " + text.slice(0, 300) : "");
  }

  function describeChunkError(error) {
    if (!error || typeof error !== "object") return String(error);
    const kind = [error.type, error.code ? "(" + error.code + ")" : ""].filter(Boolean).join(" ");
    return "The stream ended with an error · " + (kind ? kind + ": " : "") + (error.message || "no message");
  }

  // One answer in the transcript: where its thinking, text, error and facts go.
  class AnswerView {
    constructor(node, alias) {
      this.node = node;
      this.thinkingBlock = node.querySelector(".pg-thinking");
      this.thinking = node.querySelector(".pg-thinking .pg-text");
      this.answer = node.querySelector(".pg-answer");
      this.error = node.querySelector(".pg-error");
      this.warning = node.querySelector(".pg-warning");
      node.querySelector(".pg-role").textContent = alias;
      this.text = "";
      this.reasoning = "";
    }
    fact(name, value, title) {
      const cell = this.node.querySelector('[data-fact="' + name + '"]');
      const target = cell.querySelector("code") || cell;
      target.textContent = value;
      if (title) cell.title = title;
    }
    addReasoning(text) {
      this.reasoning += text;
      this.thinking.textContent = this.reasoning;
      this.thinkingBlock.hidden = false;
    }
    addText(text) {
      this.text += text;
      this.answer.textContent = this.text;
    }
    fail(message) {
      this.error.textContent = message;
      this.error.hidden = false;
      this.node.classList.add("pg-failed");
    }
    headers(headers) {
      const requestId = headers.get("x-turnout-request-id");
      this.fact("request-id", requestId || "–");
      this.fact("deployment", headers.get("x-turnout-deployment") || "–", headers.get("x-turnout-deployment-id") || "");
      const attempted = headers.get("x-turnout-attempted") || "";
      const attempts = headers.get("x-turnout-attempts") || (attempted ? String(attempted.split(", ").length) : "–");
      this.fact("attempts", attempts, attempted);
      this.fact("fallback", headers.get("x-turnout-fallback") || "none");
      const cost = headers.get("x-turnout-cost");
      if (cost !== null) this.fact("cost", dollars(cost));
      const warning = headers.get("x-turnout-warning");
      if (warning) { this.warning.textContent = "Warning: " + warning; this.warning.hidden = false; }
      return requestId;
    }
    usage(usage) {
      if (!usage || typeof usage !== "object") return;
      const details = usage.completion_tokens_details || {};
      let text = (usage.prompt_tokens ?? "?") + " in · " + (usage.completion_tokens ?? "?") + " out";
      if (details.reasoning_tokens) text += " (" + details.reasoning_tokens + " reasoning)";
      this.fact("tokens", text);
    }
    // What the request log recorded: the gateway's own timings, and a stream's cost.
    logged(row, browser) {
      const measured = "in the browser, and as the gateway measured it";
      if (row.cost === null && row.status >= 400) this.fact("cost", "–");
      else this.fact("cost", dollars(row.cost) + (row.tokens_estimated && row.cost !== null ? " (estimated tokens)" : ""));
      if (this.shows("deployment", "–") && row.provider) {
        this.fact("deployment", row.provider + "/" + row.upstream_model + " (tried last)");
      }
      if (row.ttft_ms !== null) this.fact("ttft", browser.ttft + " · gateway " + milliseconds(row.ttft_ms), measured);
      this.fact("total", browser.total + " · gateway " + milliseconds(row.latency_ms), measured);
      if (this.shows("attempts", "–")) this.fact("attempts", String(row.attempts));
      if (this.shows("tokens", "–") && row.prompt_tokens !== null) {
        this.fact("tokens", row.prompt_tokens + " in · " + row.completion_tokens + " out" +
          (row.tokens_estimated ? " (estimated)" : ""));
      }
    }
    shows(name, text) {
      return this.node.querySelector('[data-fact="' + name + '"]').textContent === text;
    }
  }

  function start(root) {
    const chatUrl = root.dataset.chatUrl;
    const logUrl = root.dataset.logUrl;
    const model = root.querySelector("#pg-model");
    const system = root.querySelector("#pg-system");
    const temperature = root.querySelector("#pg-temperature");
    const maxTokens = root.querySelector("#pg-max-tokens");
    const effort = root.querySelector("#pg-effort");
    const stream = root.querySelector("#pg-stream");
    const transcript = root.querySelector("#pg-transcript");
    const composer = root.querySelector("#pg-composer");
    const message = root.querySelector("#pg-message");
    const send = root.querySelector("#pg-send");
    const stop = root.querySelector("#pg-stop");
    const clear = root.querySelector("#pg-clear");
    const userTurn = document.getElementById("pg-user-turn");
    const assistantTurn = document.getElementById("pg-assistant-turn");

    let history = []; // the conversation so far, sent with each turn
    let running = null; // the AbortController of the answer in flight
    let conversation = 0; // counts Clear presses: an answer from before one does not rejoin the history

    function append(template) {
      const empty = transcript.querySelector("#pg-empty");
      if (empty) empty.remove();
      const node = template.content.firstElementChild.cloneNode(true);
      transcript.appendChild(node);
      node.scrollIntoView({ block: "end" });
      return node;
    }

    function requestBody(messages) {
      const body = { model: model.value, messages: messages, stream: stream.checked };
      if (stream.checked) body.stream_options = { include_usage: true };
      const heat = numberOrNull(temperature.value, parseFloat);
      if (heat !== null) body.temperature = heat;
      const most = numberOrNull(maxTokens.value, (text) => parseInt(text, 10));
      if (most !== null) body.max_tokens = most;
      if (effort.value) body.reasoning_effort = effort.value;
      return body;
    }

    function busy(on) {
      send.disabled = on;
      stop.disabled = !on;
    }

    async function readStream(response, view, clock) {
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      let usage = null;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = event.split("\n").filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).replace(/^ /, "")).join("\n");
          if (!data || data === "[DONE]") continue;
          let chunk;
          try { chunk = JSON.parse(data); } catch (_) { continue; }
          if (chunk.error) { view.fail(describeChunkError(chunk.error)); continue; }
          if (chunk.usage) usage = chunk.usage;
          const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
          if (!delta) continue;
          const thought = delta.reasoning_content || delta.reasoning;
          if (typeof thought === "string" && thought) { clock.first(); view.addReasoning(thought); }
          if (typeof delta.content === "string" && delta.content) { clock.first(); view.addText(delta.content); }
          if (delta.tool_calls) { clock.first(); view.addText(JSON.stringify(delta.tool_calls)); }
        }
      }
      view.usage(usage);
    }

    async function readWhole(response, view, clock) {
      const answer = await response.json();
      clock.first();
      const choice = answer.choices && answer.choices[0];
      const said = (choice && choice.message) || {};
      const thought = said.reasoning_content || said.reasoning;
      if (typeof thought === "string" && thought) view.addReasoning(thought);
      if (typeof said.content === "string") view.addText(said.content);
      else if (said.content) view.addText(JSON.stringify(said.content));
      if (said.tool_calls) view.addText(JSON.stringify(said.tool_calls, null, 1));
      view.usage(answer.usage);
    }

    async function showLogged(requestId, view, browser) {
      for (let attempt = 0; attempt < LOG_TRIES; attempt += 1) {
        const response = await fetch(logUrl + encodeURIComponent(requestId), {
          headers: { accept: "application/json" }, credentials: "same-origin",
        });
        if (response.ok) { view.logged(await response.json(), browser); return; }
        if (response.status !== 404) return;
        await new Promise((resolve) => setTimeout(resolve, LOG_PAUSE_MS));
      }
      if (view.shows("cost", "…")) view.fact("cost", "not logged yet");
    }

    async function turn(text) {
      const messages = [];
      if (system.value.trim()) messages.push({ role: "system", content: system.value });
      const asked = { role: "user", content: text };
      const ours = conversation;
      messages.push(...history, asked);
      append(userTurn).querySelector(".pg-text").textContent = text;
      const view = new AnswerView(append(assistantTurn), model.value);
      const controller = new AbortController();
      running = controller;
      busy(true);
      const started = performance.now();
      let firstAt = null;
      const clock = { first() { if (firstAt === null) { firstAt = performance.now(); view.fact("ttft", milliseconds(firstAt - started)); } } };
      let requestId = null;
      let answered = false;
      try {
        const response = await fetch(chatUrl, {
          method: "POST",
          credentials: "same-origin",
          signal: controller.signal,
          headers: {
            "content-type": "application/json",
            accept: stream.checked ? "text/event-stream" : "application/json",
            "X-CSRF-Token": csrfToken(),
          },
          body: JSON.stringify(requestBody(messages)),
        });
        requestId = view.headers(response.headers);
        if (!response.ok) {
          view.fail(await describeFailure(response));
        } else if ((response.headers.get("content-type") || "").startsWith("text/event-stream")) {
          await readStream(response, view, clock);
          answered = true;
        } else {
          await readWhole(response, view, clock);
          answered = true;
        }
      } catch (error) {
        if (error && error.name === "AbortError") {
          view.fail("Stopped.");
          answered = view.text !== ""; // what had arrived stays in the conversation
        } else {
          view.fail("The request failed: " + (error && error.message ? error.message : String(error)));
        }
      } finally {
        running = null;
        busy(false);
      }
      const total = performance.now() - started;
      const browser = { ttft: firstAt === null ? "–" : milliseconds(firstAt - started), total: milliseconds(total) };
      view.fact("ttft", browser.ttft);
      view.fact("total", browser.total);
      if (view.shows("tokens", "…")) view.fact("tokens", "–");
      if (answered && ours === conversation) history = [...history, asked, { role: "assistant", content: view.text }];
      if (requestId) await showLogged(requestId, view, browser);
      else if (view.shows("cost", "…")) view.fact("cost", "–");
    }

    composer.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = message.value;
      if (running || !text.trim() || !model.value) return;
      message.value = "";
      turn(text);
    });
    message.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        composer.requestSubmit();
      }
    });
    stop.addEventListener("click", () => { if (running) running.abort(); });
    clear.addEventListener("click", () => {
      if (running) running.abort();
      history = [];
      conversation += 1;
      transcript.replaceChildren();
    });
    root.querySelector("#pg-settings").addEventListener("submit", (event) => event.preventDefault());
  }

  window.turnoutPages = window.turnoutPages || {};
  window.turnoutPages.playground = start;
})();
