" reaper-lsp for Vim 9 through ALE or vim-lsp (Neovim: see editors/neovim instead).
"
" Copy this file to ~/.vim/plugin/reaper.vim (or `source` it from your vimrc). It registers
" the `reaper-lsp` server with whichever of the two clients is installed and adds:
"
"   :ReaperSignIn [copilot|google]   sign in; shows the code and copies it to the + and " registers
"   :ReaperSignOut [copilot|google]  forget that sign-in
"   :ReaperStatus                    providers, sign-ins and the completion chain
"   :ReaperChat {question}           ask about the current buffer; the answer opens in a split
"
" Completion comes from the client's menu: with ALE, `set omnifunc=ale#completion#OmniFunc`
" and press <C-x><C-o>, or `let g:ale_completion_enabled = 1` before ALE loads; with vim-lsp,
" `setlocal omnifunc=lsp#complete`. See README.md next to this file for ALE's limits.

if exists('g:loaded_reaper_lsp')
  finish
endif
let g:loaded_reaper_lsp = 1

" The server command, and the name both clients know it by.
let g:reaper_lsp_command = get(g:, 'reaper_lsp_command', ['reaper-lsp'])
" Files whose nearest ancestor holding one of these is the project root.
let g:reaper_lsp_root_markers = get(g:, 'reaper_lsp_root_markers', ['.reaper.toml', '.git'])
" The [completion], [chat] and [privacy] keys of reaper.toml; they override the user file
" (endpoints and keys: reaper.toml and the environment only).
let g:reaper_lsp_init_options = get(g:, 'reaper_lsp_init_options', {})

" -- root ---------------------------------------------------------------------------------

function! ReaperProjectRoot(buffer) abort
  let l:dir = fnamemodify(bufname(a:buffer), ':p:h')
  for l:marker in g:reaper_lsp_root_markers
    let l:found = finddir(l:marker, l:dir . ';')
    if empty(l:found)
      let l:found = findfile(l:marker, l:dir . ';')
    endif
    if !empty(l:found)
      return fnamemodify(l:found, ':p:h:h')
    endif
  endfor
  " ALE starts no language server without a root: the file's directory will do.
  return l:dir
endfunction

" -- ALE ----------------------------------------------------------------------------------

function! s:HaveAle() abort
  return !empty(globpath(&runtimepath, 'autoload/ale/linter.vim', 1))
endfunction

" ALE keeps linters per filetype, so reaper-lsp is defined for each filetype when a buffer of
" it first appears.
function! s:DefineAleLinter(filetype) abort
  if has_key(s:ale_defined, a:filetype)
    return
  endif
  let s:ale_defined[a:filetype] = 1
  call ale#linter#Define(a:filetype, {
  \   'name': 'reaper',
  \   'lsp': 'stdio',
  \   'executable': {buffer -> g:reaper_lsp_command[0]},
  \   'command': {buffer -> join(map(copy(g:reaper_lsp_command), 'ale#Escape(v:val)'))},
  \   'project_root': function('ReaperProjectRoot'),
  \   'initialization_options': {buffer -> g:reaper_lsp_init_options},
  \})
endfunction
let s:ale_defined = {}

" ALE runs only its default linters for some filetypes (python, go, rust, json, ...). Where the
" user has not chosen the linters, this buffer gets those defaults plus reaper; where they have
" (g:ale_linters, b:ale_linters, g:ale_linters_explicit), 'reaper' must be in their list.
function! s:AttachAle(filetype) abort
  if empty(a:filetype) || !s:HaveAle()
    return
  endif
  let l:chosen = exists('b:ale_linters') || get(g:, 'ale_linters_explicit', 0)
  \   || has_key(get(g:, 'ale_linters', {}), a:filetype)
  if !l:chosen && !has_key(s:ale_defined, a:filetype)
    let s:ale_defaults[a:filetype] = map(ale#linter#Get(a:filetype), 'v:val.name')
  endif
  call s:DefineAleLinter(a:filetype)
  if !l:chosen && has_key(s:ale_defaults, a:filetype)
    let b:ale_linters = {a:filetype: s:ale_defaults[a:filetype] + ['reaper']}
  endif
endfunction
let s:ale_defaults = {}

" ALE passes on no notification it does not know: reaper/status (a provider failing, a key
" rejected, a sign-in ending) is shown from a callback on reaper-lsp's connections.
function! s:OnAleStarted() abort
  let l:prefix = g:reaper_lsp_command[0] . ':'
  for l:id in keys(ale#lsp#GetConnections())
    if stridx(l:id, l:prefix) == 0
      call ale#lsp#RegisterCallback(l:id, function('s:OnAleMessage'))
    endif
  endfor
endfunction

function! s:OnAleMessage(conn_id, message) abort
  if get(a:message, 'method', '') is# 'reaper/status'
    call ReaperShowStatusChange(get(a:message, 'params', {}))
  endif
endfunction

function! s:AleRunning() abort
  return s:HaveAle() && has_key(s:ale_defined, &filetype)
  \   && get(g:, 'loaded_ale', 0) && get(g:, 'ale_enabled', 1)
endfunction

" -- vim-lsp ------------------------------------------------------------------------------

function! s:RegisterVimLsp() abort
  call lsp#register_server({
  \   'name': 'reaper-lsp',
  \   'cmd': {server_info -> g:reaper_lsp_command},
  \   'root_uri': {server_info -> lsp#utils#path_to_uri(ReaperProjectRoot(bufnr('')))},
  \   'initialization_options': g:reaper_lsp_init_options,
  \   'allowlist': ['*'],
  \})
  call lsp#register_notifications('reaper-lsp', function('s:OnVimLspMessage'))
endfunction

function! s:OnVimLspMessage(server_name, data) abort
  let l:message = get(a:data, 'response', {})
  if a:server_name is# 'reaper-lsp' && get(l:message, 'method', '') is# 'reaper/status'
    call ReaperShowStatusChange(get(l:message, 'params', {}))
  endif
endfunction

function! s:VimLspRunning() abort
  return exists('*lsp#get_server_status')
  \   && lsp#get_server_status('reaper-lsp') is# 'running'
endfunction

augroup reaper_lsp
  autocmd!
  autocmd FileType * call s:AttachAle(expand('<amatch>'))
  autocmd User lsp_setup call s:RegisterVimLsp()
  autocmd User ALELSPStarted call s:OnAleStarted()
augroup END

" -- commands -----------------------------------------------------------------------------

" Run the server's `command` with `arguments` and call Handler(result) or report the error.
function! ReaperExecute(command, arguments, Handler) abort
  let l:params = {'command': a:command, 'arguments': a:arguments}
  if s:AleRunning()
    call ale#lsp_linter#SendRequest(bufnr(''), 'reaper',
    \   [0, 'workspace/executeCommand', l:params],
    \   {response -> s:Answer(response, a:Handler)})
  elseif s:VimLspRunning()
    call lsp#send_request('reaper-lsp', {
    \   'method': 'workspace/executeCommand',
    \   'params': l:params,
    \   'on_notification': {data -> s:Answer(get(data, 'response', {'error': data}), a:Handler)},
    \})
  else
    echoerr 'reaper-lsp is not running for this buffer (needs ALE or vim-lsp; see :help ale)'
  endif
endfunction

function! s:Answer(response, Handler) abort
  if has_key(a:response, 'error')
    echohl ErrorMsg
    echomsg 'reaper-lsp: ' . get(a:response.error, 'message', 'request failed')
    echohl None
    return
  endif
  call a:Handler(get(a:response, 'result', v:null))
endfunction

function! ReaperShowStatusChange(params) abort
  let l:text = get(a:params, 'message', '')
  echomsg printf('reaper-lsp: %s %s%s', get(a:params, 'provider', '?'),
  \   get(a:params, 'state', '?'), empty(l:text) ? '' : ' — ' . l:text)
endfunction

function! s:Provider(args) abort
  return {'provider': empty(a:args) ? 'copilot' : a:args}
endfunction

function! s:SignedIn(provider, result) abort
  echomsg printf('reaper-lsp: signed in to %s as %s', a:provider, get(a:result, 'user', ''))
endfunction

function! s:SignInStarted(request, result) abort
  let l:code = get(a:result, 'userCode', '')
  let l:url = get(a:result, 'verificationUri', get(a:result, 'authorizeUrl', ''))
  if !empty(l:code)
    call setreg('"', l:code)
    if has('clipboard')
      silent! call setreg('+', l:code)
    endif
    echomsg printf('reaper-lsp: enter code %s at %s (copied)', l:code, l:url)
  else
    echomsg 'reaper-lsp: finish signing in at ' . l:url
  endif
  let g:reaper_lsp_last_sign_in = a:result
  " The confirmation waits until the user has entered the code in the browser.
  call ReaperExecute('reaper.signInConfirm', [a:request],
  \   function('s:SignedIn', [a:request.provider]))
endfunction

function! s:SignIn(args) abort
  let l:request = s:Provider(a:args)
  call ReaperExecute('reaper.signIn', [l:request], function('s:SignInStarted', [l:request]))
endfunction

function! s:SignOut(args) abort
  let l:request = s:Provider(a:args)
  call ReaperExecute('reaper.signOut', [l:request],
  \   {result -> execute('echomsg "reaper-lsp: signed out of ' . l:request.provider . '"', '')})
endfunction

function! ReaperStatusLine(status) abort
  let l:signed = []
  for [l:account, l:info] in items(get(a:status, 'signIn', {}))
    call add(l:signed, l:account . (get(l:info, 'signedIn', v:false) is v:true
    \   ? ' signed in' : ' signed out'))
  endfor
  return printf('reaper-lsp %s · completion: %s · %s', get(a:status, 'version', '?'),
  \   join(get(a:status, 'completionChain', []), ' → '), join(sort(l:signed), ', '))
endfunction

function! s:ShowStatus(status) abort
  let g:reaper_lsp_last_status = a:status
  echomsg ReaperStatusLine(a:status)
endfunction

function! s:ShowChat(result) abort
  let g:reaper_lsp_last_chat = a:result
  new
  setlocal buftype=nofile bufhidden=wipe noswapfile filetype=markdown
  silent file [reaper-chat]
  call setline(1, split(get(a:result, 'text', ''), "\n", 1))
endfunction

function! s:Chat(prompt) abort
  let l:uri = 'file://' . fnamemodify(bufname(''), ':p')
  call ReaperExecute('reaper.chat', [{'prompt': a:prompt, 'textDocument': {'uri': l:uri}}],
  \   function('s:ShowChat'))
endfunction

command! -nargs=? ReaperSignIn call s:SignIn(<q-args>)
command! -nargs=? ReaperSignOut call s:SignOut(<q-args>)
command! -nargs=0 ReaperStatus call ReaperExecute('reaper.status', [], function('s:ShowStatus'))
command! -nargs=+ ReaperChat call s:Chat(<q-args>)
