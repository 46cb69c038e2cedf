/// The page `GET /` serves: drop or choose a PNG, see DAFAR's verdict and the four pictures of
/// `ImageExplanation` (what `dafar-inspect --explain` draws), through `POST /v1/explain`.
///
/// Self-contained: inline CSS and JavaScript, no external resource, no cookie, nothing stored.
/// The elements a test (or a person with the browser's inspector) reads: `#file` (the file input),
/// `#status` (`data-state` idle, busy, done or error, `data-request` the number of files chosen so
/// far), `#verdict` (`ADVERSARIAL` or `clean`), `#predicted-class`, `#probability`, `#score`,
/// `#threshold`, and `#pictures img` (one per picture, `data-name` as in `pictureNames`).
public enum InspectionPage {
    /// The page, UTF-8 HTML.
    public static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>dafar-serve: is this image adversarial?</title>
        <style>
          body { font: 16px/1.45 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1d1d1f; }
          h1 { font-size: 1.5rem; margin-bottom: 0.25rem; }
          #drop { display: block; border: 2px dashed #8a8a8e; border-radius: 0.75rem; padding: 2rem; text-align: center; cursor: pointer; }
          #drop.over { border-color: #0060df; background: #eef4ff; }
          #drop input { display: block; margin: 0.75rem auto 0; }
          #status[data-state="error"] { color: #b00020; }
          #verdict { font-size: 1.6rem; font-weight: 700; margin: 0.5rem 0; }
          #verdict.adversarial { color: #b00020; }
          #verdict.clean { color: #1b7f3b; }
          dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; }
          dt { color: #5f5f63; }
          dd { margin: 0; font-variant-numeric: tabular-nums; }
          #pictures { display: flex; flex-wrap: wrap; gap: 1rem; margin-top: 1rem; }
          figure { margin: 0; width: 10rem; }
          figure img { width: 10rem; image-rendering: pixelated; border: 1px solid #c7c7cc; background: #fff; }
          figcaption { font-size: 0.85rem; color: #5f5f63; }
          .note { font-size: 0.85rem; color: #5f5f63; }
        </style>
        </head>
        <body>
        <h1>Is this image adversarial?</h1>
        <p>DAFAR's verdict on one image: the class the network gives it, and whether the detector's anomaly score is above
        its threshold. The image goes to this service only (<code>POST /v1/explain</code>); nothing is resized, so it must have
        the size and channels the model reads.</p>
        <label id="drop" for="file">Drop a PNG image here, or choose one:
          <input type="file" id="file" accept="image/png,.png">
        </label>
        <p id="status" role="status" data-state="idle" data-request="0"></p>
        <section id="result" hidden>
          <p id="verdict"></p>
          <dl>
            <dt>file</dt><dd id="file-name"></dd>
            <dt>class F(E(x))</dt><dd id="predicted-class"></dd>
            <dt>probability</dt><dd id="probability"></dd>
            <dt>score</dt><dd id="score"></dd>
            <dt>threshold</dt><dd id="threshold"></dd>
          </dl>
          <div id="pictures">
            <figure><img data-name="input" alt="the input x"><figcaption>input x</figcaption></figure>
            <figure><img data-name="reconstruction" alt="the reconstruction D(E(x))"><figcaption>D(E(x)): the decoder's reconstruction</figcaption></figure>
            <figure><img data-name="residual" alt="the residual"><figcaption>residual x &minus; D(E(x))</figcaption></figure>
            <figure><img data-name="detector_reconstruction" alt="the detector's reconstruction of the residual"><figcaption>C's reconstruction of the residual</figcaption></figure>
          </div>
          <p class="note" id="residual-note"></p>
        </section>
        <script>
        "use strict";
        const fileInput = document.getElementById("file");
        const drop = document.getElementById("drop");
        const status = document.getElementById("status");
        const result = document.getElementById("result");
        let requests = 0;

        function setStatus(state, text) {
          status.dataset.state = state;
          status.dataset.request = String(requests);
          status.textContent = text;
        }

        function show(name, verdict) {
          const verdictElement = document.getElementById("verdict");
          verdictElement.textContent = verdict.adversarial ? "ADVERSARIAL" : "clean";
          verdictElement.className = verdict.adversarial ? "adversarial" : "clean";
          document.getElementById("file-name").textContent = name;
          document.getElementById("predicted-class").textContent = String(verdict.predicted_class);
          document.getElementById("probability").textContent = String(verdict.probability);
          document.getElementById("score").textContent = String(verdict.score);
          document.getElementById("threshold").textContent = String(verdict.threshold);
          for (const image of document.querySelectorAll("#pictures img")) {
            image.src = "data:image/png;base64," + verdict.pictures[image.dataset.name];
          }
          document.getElementById("residual-note").textContent = "Both residual pictures: mid grey is 0, white +" +
            verdict.residual_maximum + ", black -" + verdict.residual_maximum + " (the largest |x - D(E(x))| of this image). " +
            "Flagged when the score is above the threshold: the residual has structure C does not reproduce.";
          result.hidden = false;
        }

        async function explain(file) {
          requests += 1;
          const request = requests;
          setStatus("busy", "Inspecting " + file.name + " ...");
          try {
            const response = await fetch("v1/explain", { method: "POST", headers: { "Content-Type": "image/png" }, body: file });
            const answer = await response.json().catch(() => ({ error: "the service answered " + response.status + " without JSON" }));
            if (request !== requests) { return; }  // another file was chosen meanwhile
            if (!response.ok) { throw new Error(answer.error || "the service answered " + response.status); }
            show(file.name, answer.verdicts[0]);
            setStatus("done", file.name + ": " + (answer.verdicts[0].adversarial ? "flagged as adversarial." : "not flagged."));
          } catch (problem) {
            if (request !== requests) { return; }
            result.hidden = true;
            setStatus("error", "Error: " + problem.message);
          }
        }

        fileInput.addEventListener("change", () => { if (fileInput.files.length > 0) { explain(fileInput.files[0]); } });
        for (const type of ["dragenter", "dragover"]) {
          drop.addEventListener(type, (event) => { event.preventDefault(); drop.classList.add("over"); });
        }
        drop.addEventListener("dragleave", () => drop.classList.remove("over"));
        drop.addEventListener("drop", (event) => {
          event.preventDefault();
          drop.classList.remove("over");
          if (event.dataTransfer.files.length > 0) { explain(event.dataTransfer.files[0]); }
        });
        // A file dropped beside the zone must not make the browser leave the page to show it.
        window.addEventListener("dragover", (event) => event.preventDefault());
        window.addEventListener("drop", (event) => event.preventDefault());
        </script>
        </body>
        </html>

        """#
}
