// “报告本页的问题”（book/_ext/reader_links.py）：读者点下链接的那一刻，把 issue 里的“小节”
// 换成他正在读的那一节（视口上部四分之一以内最后一个 h1–h3），把“地址”换成这一节的完整网址。
// 网站生成的链接已经带着本页标题，所以不运行脚本时它照样可用。
(() => {
  const LINK = "a.btn-report-page-issue";

  function headingText(h) {
    const copy = h.cloneNode(true);
    copy.querySelectorAll(".headerlink").forEach((el) => el.remove());
    return copy.textContent.replace(/\s+/g, " ").trim();
  }

  // 顶边在视口上部四分之一（至少是页头下方 8px）以上的最后一个标题；还在页首时是 h1。
  // 点目录跳到一节时，主题把标题停在页头下方约 1rem 处（scroll-padding-top），仍算作这一节。
  function currentHeading() {
    const headings = [...document.querySelectorAll("article.bd-article :is(h1, h2, h3)")];
    const header = document.querySelector(".bd-header-article");
    const line = Math.max((header ? header.getBoundingClientRect().bottom : 0) + 8, innerHeight / 4);
    let current = headings[0];
    for (const h of headings) {
      if (h.getBoundingClientRect().top > line) break;
      current = h;
    }
    return current;
  }

  function update(link) {
    link.dataset.staticHref ??= link.href;
    const url = new URL(link.dataset.staticHref);
    const title = url.searchParams.get("title") || "";
    let body = url.searchParams.get("body") || "";
    let where = location.href.split("#")[0];
    const heading = currentHeading();  // 搜索页之类没有正文标题：只填完整网址
    const page = heading && headingText(document.querySelector("article.bd-article h1") || heading);
    const section = heading && headingText(heading);
    if (heading && heading.tagName !== "H1") {
      const anchor = heading.closest("section[id]");
      if (anchor) where += "#" + anchor.id;
      body = body.replace(/^小节：.*$/m, `小节：${section}`);
    }
    const newTitle = !heading || section === page ? title : `${title}${section}：`;
    const newBody = body.replace(/^地址：.*$/m, `地址：${where}`);
    url.search = `?title=${encodeURIComponent(newTitle)}&body=${encodeURIComponent(newBody)}`;
    link.href = url.href;
  }

  // 鼠标按下（含中键、右键“复制链接”）、键盘聚焦与触摸时都更新，点击跳转之前地址已经是新的
  for (const type of ["mousedown", "touchstart", "focusin", "click"]) {
    document.addEventListener(type, (event) => {
      const link = event.target.closest && event.target.closest(LINK);
      if (link) update(link);
    }, {capture: true, passive: true});
  }
})();
