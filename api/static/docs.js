fetch("/v1/openapi.json").then(r => r.json()).then(spec => {
  const root = document.getElementById("ops");
  root.textContent = "";
  const resolve = (s) => s && s.$ref ? spec.components.schemas[s.$ref.split("/").pop()] : s;
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [verb, op] of Object.entries(ops)) {
      const sec = document.createElement("section");
      const head = document.createElement("div");
      const v = document.createElement("span"); v.className = "verb " + verb.toUpperCase(); v.textContent = verb.toUpperCase();
      const p = document.createElement("code"); p.textContent = path;
      const s = document.createElement("span"); s.className = "muted"; s.textContent = "  " + (op.summary || "") + (op.description ? " — " + op.description : "");
      head.append(v, p, s); sec.append(head);
      const add = (label, schema) => {
        if (!schema) return;
        const d = document.createElement("details"); const sm = document.createElement("summary"); sm.textContent = label;
        const pre = document.createElement("pre"); pre.textContent = JSON.stringify(resolve(schema), null, 2);
        d.append(sm, pre); sec.append(d);
      };
      if (op.requestBody) add("Request body", op.requestBody.content["application/json"].schema);
      for (const [status, resp] of Object.entries(op.responses)) {
        if (resp.content && resp.content["application/json"]) add("Answer " + status, resp.content["application/json"].schema);
      }
      root.append(sec);
    }
  }
});
